"""A PET series' dose-reduction factor from its DICOM header, relative to a declared reference protocol.

No DICOM tag records a dose *reduction*: a DRF is relative to one protocol's full-dose counts. What the header does
record is enough to compute the counts a frame collects, up to the scanner's sensitivity and the patient:

    C = A exp(-lambda dt) (1 - exp(-lambda T)) / lambda,   lambda = ln 2 / half-life

with A = RadionuclideTotalDose (0018,1074, Bq at injection), dt from RadiopharmaceuticalStartDateTime (0018,1078; or
RadiopharmaceuticalStartTime 0018,1072 on the series date) to the acquisition start (the earlier of SeriesDate/Time
and AcquisitionDate/Time, as QIBA's SUV rules take it), T = ActualFrameDuration (0018,1242, ms) and the half-life
RadionuclideHalfLife (0018,1075, s). The effective DRF is C_reference / C for a site's declared full-dose protocol
(`ReferenceProtocol`: activity, uptake time, frame duration). A lower injected activity and a shorter frame
(list-mode subsampling, as in UDPET) are the same thing to this formula. DecayCorrection (0054,1102) changes how the
image is scaled, not the counts, and is reported with the result.

A NIfTI study carries the same facts in its BIDS-PET sidecar, `<name>.json` beside `<name>.nii.gz` (BIDS 1.7+):
InjectedRadioactivity with InjectedRadioactivityUnits, InjectionStart and ScanStart or FrameTimesStart (seconds from
the study's TimeZero), FrameDuration (seconds, summed over the frames of the image) and TracerRadionuclide, whose
half-life is taken from `HALF_LIVES_S` (`sidecar_dose`).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Mapping

from ..errors import ConfigValueError, InputDataError

__all__ = [
    "F18_HALF_LIFE_S",
    "HALF_LIVES_S",
    "HeaderDose",
    "ReferenceProtocol",
    "decayed_counts",
    "header_dose",
    "header_drf",
    "read_header_dose",
    "read_sidecar_dose",
    "sidecar_dose",
    "sources_disagree",
]

F18_HALF_LIFE_S = 6586.2  # 109.77 min
HALF_LIVES_S = {  # BIDS TracerRadionuclide -> half-life (s), from the NNDC / DDEP tables
    "F18": F18_HALF_LIFE_S,
    "C11": 1221.8,
    "N13": 597.9,
    "O15": 122.24,
    "GA68": 4062.6,
    "CU64": 45720.0,
    "ZR89": 282240.0,
    "RB82": 76.38,
}
ACTIVITY_UNITS_BQ = {"BQ": 1.0, "KBQ": 1e3, "MBQ": 1e6, "GBQ": 1e9, "MCI": 3.7e7, "CI": 3.7e10}
DISAGREEMENT = 2.0  # header and image DRFs further apart than this factor are named in a warning


def decayed_counts(activity_bq: float, delay_s: float, frame_s: float, half_life_s: float) -> float:
    """Decays (Bq s) during a frame of `frame_s` starting `delay_s` after injecting `activity_bq`."""
    lam = math.log(2.0) / half_life_s
    return activity_bq * math.exp(-lam * delay_s) * (1.0 - math.exp(-lam * frame_s)) / lam


@dataclass(frozen=True)
class ReferenceProtocol:
    """A site's full-dose protocol, the reference a DRF is relative to (the `reference_protocol` setting)."""

    activity_mbq: float
    uptake_min: float
    frame_min: float
    half_life_s: float = F18_HALF_LIFE_S

    def __post_init__(self) -> None:
        for name in ("activity_mbq", "frame_min", "half_life_s"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ConfigValueError(f"setting reference_protocol: {name} must be a number > 0, got {value!r}")
        if isinstance(self.uptake_min, bool) or not isinstance(self.uptake_min, (int, float)) or self.uptake_min < 0:
            raise ConfigValueError(f"setting reference_protocol: uptake_min must be >= 0, got {self.uptake_min!r}")

    @classmethod
    def from_setting(cls, value: Mapping[str, Any] | None) -> "ReferenceProtocol | None":
        if value is None:
            return None
        if not isinstance(value, Mapping):
            raise ConfigValueError(
                "setting reference_protocol: expected {'activity_mbq': ..., 'uptake_min': ..., 'frame_min': ...}, got "
                f"{value!r}"
            )
        unknown = set(value) - {"activity_mbq", "uptake_min", "frame_min", "half_life_s"}
        if unknown:
            raise ConfigValueError(f"setting reference_protocol: unknown keys {sorted(unknown)}")
        try:
            return cls(**value)
        except TypeError as exc:
            raise ConfigValueError(f"setting reference_protocol: {exc}") from None

    def counts(self) -> float:
        return decayed_counts(self.activity_mbq * 1e6, self.uptake_min * 60.0, self.frame_min * 60.0, self.half_life_s)


@dataclass(frozen=True)
class HeaderDose:
    """The dose facts of one series' header."""

    activity_bq: float
    delay_s: float
    frame_s: float
    half_life_s: float
    decay_correction: str

    def counts(self) -> float:
        return decayed_counts(self.activity_bq, self.delay_s, self.frame_s, self.half_life_s)


def _datetime(date: str, time: str) -> datetime:
    """A DICOM DA + TM (TM: HHMMSS with optional fraction; HH, HHMM allowed)."""
    time = time.strip().split("&")[0]
    whole, _, fraction = time.partition(".")
    whole = whole.ljust(6, "0")
    stamp = datetime.strptime(date.strip()[:8] + whole[:6], "%Y%m%d%H%M%S")
    return stamp + timedelta(seconds=float(f"0.{fraction}") if fraction else 0.0)


def _dt(value: str) -> datetime:
    """A DICOM DT (YYYYMMDDHHMMSS.FFFFFF&ZZXX; the offset is dropped: both times of a series share it)."""
    text = str(value).strip().split("+")[0].split("-")[0].split("&")[0]
    return _datetime(text[:8], text[8:] or "000000")


def header_dose(dataset: Any, where: str = "the DICOM header") -> HeaderDose | None:
    """The dose facts of a pydicom dataset, or None when a needed tag is missing (the DRF then comes from elsewhere).

    Raises:
        InputDataError: the tags are there but impossible (injection after the scan, non-positive dose or duration).
    """
    sequence = getattr(dataset, "RadiopharmaceuticalInformationSequence", None)
    if not sequence:
        return None
    info = sequence[0]
    activity, half_life = getattr(info, "RadionuclideTotalDose", None), getattr(info, "RadionuclideHalfLife", None)
    frame_ms = getattr(dataset, "ActualFrameDuration", None)
    if activity in (None, "") or half_life in (None, "") or frame_ms in (None, ""):
        return None
    starts = []
    for date_tag, time_tag in (("SeriesDate", "SeriesTime"), ("AcquisitionDate", "AcquisitionTime")):
        if getattr(dataset, date_tag, None) and getattr(dataset, time_tag, None):
            starts.append(_datetime(getattr(dataset, date_tag), getattr(dataset, time_tag)))
    if not starts:
        return None
    start = min(starts)
    if getattr(info, "RadiopharmaceuticalStartDateTime", None):
        injected = _dt(info.RadiopharmaceuticalStartDateTime)
    elif getattr(info, "RadiopharmaceuticalStartTime", None):
        injected = _datetime(start.strftime("%Y%m%d"), info.RadiopharmaceuticalStartTime)
        if injected > start:
            injected -= timedelta(days=1)  # a time of day only: injected before midnight, scanned after
    else:
        return None
    delay = (start - injected).total_seconds()
    result = HeaderDose(float(activity), delay, float(frame_ms) / 1000.0, float(half_life),
                        str(getattr(dataset, "DecayCorrection", "")))  # fmt: skip
    if result.activity_bq <= 0 or result.frame_s <= 0 or result.half_life_s <= 0:
        raise InputDataError(
            f"{where}: RadionuclideTotalDose {activity}, ActualFrameDuration {frame_ms} ms and RadionuclideHalfLife "
            f"{half_life} s must all be > 0"
        )
    if delay < 0:
        raise InputDataError(f"{where}: the acquisition starts {-delay:.0f} s before the injection (check the times)")
    return result


def header_drf(dose: HeaderDose, reference: ReferenceProtocol) -> float:
    """The effective DRF of a series: the reference protocol's counts over the series' counts."""
    return reference.counts() / dose.counts()


def read_header_dose(series_folder: str | Path) -> HeaderDose | None:
    """The dose facts of a DICOM series folder (its first file's header), or None when it records none."""
    import pydicom

    folder = Path(series_folder)
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        try:
            dataset = pydicom.dcmread(str(path), stop_before_pixels=True)
        except Exception:  # noqa: BLE001 - not a DICOM file: try the next one
            continue
        return header_dose(dataset, str(path))
    return None


def sources_disagree(header: float, image: float, factor: float = DISAGREEMENT) -> bool:
    """Whether a header DRF and an image DRF are further apart than `factor`."""
    return max(header, image) / min(header, image) > factor


def _number(sidecar: Mapping[str, Any], key: str, where: str) -> float | None:
    """A number of the sidecar (the first of a list), None when absent; anything else is a named error."""
    value = sidecar.get(key)
    if value is None:
        return None
    if isinstance(value, list):
        if not value:
            return None
        value = value[0]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InputDataError(f"{where}: {key} must be a number (seconds or activity), got {sidecar.get(key)!r}")
    return float(value)


def sidecar_dose(sidecar: Mapping[str, Any], where: str = "the BIDS sidecar") -> HeaderDose | None:
    """The dose facts of a BIDS-PET sidecar (its JSON as a mapping), or None when a needed field is missing.

    Raises:
        InputDataError: the fields are there but impossible or unknown (a unit or radionuclide this table lacks,
            injection after the scan, a non-positive activity or duration).
    """
    activity = _number(sidecar, "InjectedRadioactivity", where)
    units, nuclide = sidecar.get("InjectedRadioactivityUnits"), sidecar.get("TracerRadionuclide")
    durations = sidecar.get("FrameDuration")
    injection = _number(sidecar, "InjectionStart", where)
    start = _number(sidecar, "FrameTimesStart", where)
    start = _number(sidecar, "ScanStart", where) if start is None else start
    if None in (activity, units, nuclide, durations, injection, start):
        return None
    scale = ACTIVITY_UNITS_BQ.get(str(units).replace(" ", "").upper())
    if scale is None:
        raise InputDataError(f"{where}: InjectedRadioactivityUnits {units!r} is not one of Bq, kBq, MBq, GBq, mCi, Ci")
    half_life = HALF_LIVES_S.get(str(nuclide).replace("-", "").replace(" ", "").upper())
    if half_life is None:
        raise InputDataError(f"{where}: TracerRadionuclide {nuclide!r} is not one of {sorted(HALF_LIVES_S)}")
    frames = durations if isinstance(durations, list) else [durations]
    if not frames or any(isinstance(f, bool) or not isinstance(f, (int, float)) for f in frames):
        raise InputDataError(
            f"{where}: FrameDuration must be seconds (a number or a list of numbers), got {durations!r}"
        )
    frame_s = float(sum(frames))
    if activity <= 0 or frame_s <= 0:
        raise InputDataError(f"{where}: InjectedRadioactivity {activity} and FrameDuration {durations} must be > 0")
    delay = start - injection
    if delay < 0:
        raise InputDataError(f"{where}: the scan starts {-delay:.0f} s before the injection (check InjectionStart)")
    decay = f"ImageDecayCorrected {sidecar.get('ImageDecayCorrected')}"
    return HeaderDose(activity * scale, delay, frame_s, half_life, decay)


def read_sidecar_dose(path: str | Path) -> HeaderDose | None:
    """The dose facts of a BIDS-PET sidecar file, or None when it records none; unreadable JSON is a named error."""
    try:
        sidecar = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise InputDataError(f"{path}: not a readable JSON sidecar ({exc})") from None
    if not isinstance(sidecar, Mapping):
        raise InputDataError(f"{path}: a BIDS sidecar is a JSON object, got {type(sidecar).__name__}")
    return sidecar_dose(sidecar, str(path))
