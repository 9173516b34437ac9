"""The DRF read from a PET series' DICOM header, against an independent numerical integral of the decay."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from scipy.integrate import quad

from bundle.deploy.header_dose import (
    F18_HALF_LIFE_S,
    ReferenceProtocol,
    header_dose,
    header_drf,
    read_header_dose,
    sources_disagree,
)
from bundle.errors import ConfigValueError, InputDataError


def series_header(activity_mbq=370.0, injected="093000", series="101500", frame_s=600.0, date_time=True, **extra):
    """A PET header: injection at `injected` (HHMMSS), the series at `series` on 2026-12-06."""
    info = Dataset()
    info.RadionuclideTotalDose = str(activity_mbq * 1e6)
    info.RadionuclideHalfLife = str(F18_HALF_LIFE_S)
    if date_time:
        info.RadiopharmaceuticalStartDateTime = "20261206" + injected + ".000000"
    else:
        info.RadiopharmaceuticalStartTime = injected
    ds = Dataset()
    ds.RadiopharmaceuticalInformationSequence = Sequence([info])
    ds.SeriesDate, ds.SeriesTime = "20261206", series
    ds.ActualFrameDuration = str(int(frame_s * 1000))
    ds.DecayCorrection = "START"
    for key, value in extra.items():
        setattr(ds, key, value)
    return ds


def integrated_decays(activity_bq: float, start_s: float, frame_s: float, half_life_s: float) -> float:
    """Independent check: the decay rate integrated numerically over the frame."""
    lam = math.log(2) / half_life_s
    return quad(lambda t: activity_bq * lam * math.exp(-lam * t), start_s, start_s + frame_s)[0] / lam


REFERENCE = ReferenceProtocol(activity_mbq=370.0, uptake_min=45.0, frame_min=10.0)


@pytest.mark.parametrize(
    "activity_mbq, injected, series, frame_s, truth_activity_fraction",
    [
        (370.0, "093000", "101500", 600.0, 1.0),  # the reference itself: DRF 1
        (185.0, "093000", "101500", 600.0, 0.5),  # half the activity
        (370.0, "093000", "101500", 30.0, None),  # a 30 s frame (list-mode subsampling)
        (74.0, "080000", "093000", 300.0, None),  # 90 min uptake, 5 min
        (37.0, "093000", "094500", 1200.0, None),  # early and long
    ],
)
def test_header_drf_matches_an_independent_integral_within_one_percent(
    activity_mbq, injected, series, frame_s, truth_activity_fraction
):
    header = header_dose(series_header(activity_mbq, injected, series, frame_s))
    hours = lambda hhmmss: int(hhmmss[:2]) * 3600 + int(hhmmss[2:4]) * 60 + int(hhmmss[4:6])  # noqa: E731
    delay = hours(series) - hours(injected)
    assert header.delay_s == pytest.approx(delay)
    truth = integrated_decays(370e6, 45 * 60, 600, F18_HALF_LIFE_S) / integrated_decays(
        activity_mbq * 1e6, delay, frame_s, F18_HALF_LIFE_S
    )
    drf = header_drf(header, REFERENCE)
    assert drf == pytest.approx(truth, rel=0.01)
    if truth_activity_fraction is not None:
        assert drf == pytest.approx(1.0 / truth_activity_fraction, rel=1e-6)


def test_header_times_across_midnight_and_acquisition_before_series_time():
    over_midnight = series_header(injected="233000", series="001500", date_time=False)
    assert header_dose(over_midnight).delay_s == pytest.approx(45 * 60)
    # QIBA: the earlier of the series and acquisition start is the scan start
    later_series = series_header(series="120000", AcquisitionDate="20261206", AcquisitionTime="101500")
    assert header_dose(later_series).delay_s == pytest.approx(45 * 60)


def test_a_header_without_the_dose_tags_gives_none_and_impossible_ones_a_named_error(tmp_path):
    no_sequence = series_header()
    del no_sequence.RadiopharmaceuticalInformationSequence
    assert header_dose(no_sequence) is None
    no_frame = series_header()
    del no_frame.ActualFrameDuration
    assert header_dose(no_frame) is None
    with pytest.raises(InputDataError, match="before the injection"):
        header_dose(series_header(injected="120000", series="101500"), "study.dcm")
    with pytest.raises(InputDataError, match="must all be > 0"):
        header_dose(series_header(activity_mbq=0.0))
    assert read_header_dose(tmp_path) is None  # an empty folder


def test_reference_protocol_setting_is_validated_by_name():
    assert ReferenceProtocol.from_setting(None) is None
    assert ReferenceProtocol.from_setting(
        {"activity_mbq": 370, "uptake_min": 45, "frame_min": 10}
    ) == ReferenceProtocol(370, 45, 10)
    for bad in ({"activity_mbq": 0, "uptake_min": 45, "frame_min": 10}, {"activity_mbq": 370}, {"dose": 1}, 5):
        with pytest.raises(ConfigValueError, match="setting reference_protocol"):
            ReferenceProtocol.from_setting(bad)


def test_the_disagreement_check_fires_at_header_2_image_20_and_not_within_2x():
    assert sources_disagree(2.0, 20.0) and sources_disagree(20.0, 2.0)
    assert not sources_disagree(10.0, 19.0)
    assert np.isclose(header_drf(header_dose(series_header(185.0)), REFERENCE), 2.0)


def _dicom_series_with_dose(folder, activity_mbq: float):
    """A tiny PET series whose header records `activity_mbq` injected 45 min before a 10 min frame."""
    import pydicom

    from bundle.deploy.synthetic_dicom import write_pet_series

    write_pet_series(np.random.default_rng(0).random((8, 8, 4)).astype(np.float32) + 1.0, folder)
    for path in sorted(folder.glob("*.dcm")):
        ds = pydicom.dcmread(path)
        header = series_header(activity_mbq, "093000", "101500", 600.0)
        ds.RadiopharmaceuticalInformationSequence = header.RadiopharmaceuticalInformationSequence
        ds.SeriesDate, ds.SeriesTime, ds.ActualFrameDuration = header.SeriesDate, "101500", header.ActualFrameDuration
        ds.save_as(path)
    return {"image": str(folder), "format": "dicom"}


def test_dose_input_reads_the_drf_from_the_header_and_names_a_disagreeing_image(tmp_path, caplog):
    import logging

    import torch

    from bundle.deploy.dose_input import DoseInput

    study = _dicom_series_with_dose(tmp_path / "series", 37.0)  # a tenth of the reference's activity: DRF 10
    reference = {"activity_mbq": 370.0, "uptake_min": 45.0, "frame_min": 10.0}
    image = torch.ones(1, 8, 8, 4)
    dose = DoseInput(None, None, (2.0, 200.0), reference)
    dose.check()  # a reference protocol is a source of DRF: no --drf needed
    dose("s", image, study=study)
    assert dose.used["s"]["source"] == "header" and dose.used["s"]["drf"] == pytest.approx(10.0, rel=0.01)
    estimator = {"floor": 0.0, "slope": 1.0}  # the image "looks like" DRF ~ level^2 / 1: far from 10
    with caplog.at_level(logging.WARNING, logger="bundle.deploy.dose_input"):
        DoseInput(None, estimator, (2.0, 200.0), reference)("s", image * 0 + 1, study=study)
    assert "the DICOM header says DRF 10" in caplog.text and "more than 2x apart" in caplog.text
    low = _dicom_series_with_dose(tmp_path / "tiny_dose", 0.37)  # DRF 1000: above the trained range
    with caplog.at_level(logging.WARNING, logger="bundle.deploy.dose_input"):
        dose("t", image, study=low)
    assert dose.used["t"]["drf"] == 200.0 and "above the trained 200" in caplog.text
    with pytest.raises(ConfigValueError, match="no DRF"):
        dose("n", image, study={"image": str(tmp_path / "x.nii.gz"), "format": "nifti"})


def bids_sidecar(activity=370.0, units="MBq", injection_s=0.0, start_s=2700.0, frames=(600.0,), **extra):
    """A BIDS-PET sidecar: `activity` injected at `injection_s`, the image's frames from `start_s` (s from TimeZero)."""
    sidecar = {
        "TracerRadionuclide": "F18",
        "InjectedRadioactivity": activity,
        "InjectedRadioactivityUnits": units,
        "InjectionStart": injection_s,
        "FrameTimesStart": [start_s + sum(frames[:i]) for i in range(len(frames))],
        "FrameDuration": list(frames),
        "ImageDecayCorrected": True,
    }
    sidecar.update(extra)
    return sidecar


@pytest.mark.parametrize(
    "sidecar, activity_bq, delay_s, frame_s",
    [
        (bids_sidecar(), 370e6, 2700.0, 600.0),  # the reference itself
        (bids_sidecar(activity=1.0, units="mCi"), 37e6, 2700.0, 600.0),  # mCi: DRF 10
        (bids_sidecar(injection_s=-300.0, start_s=5400.0, frames=(150.0, 150.0)), 370e6, 5700.0, 300.0),
        (bids_sidecar(activity=18.5, FrameTimesStart=None, ScanStart=2700.0, frames=(600.0,)), 18.5e6, 2700.0, 600.0),
    ],
)
def test_the_bids_sidecar_drf_matches_an_independent_integral_within_one_percent(
    sidecar, activity_bq, delay_s, frame_s
):
    from bundle.deploy.header_dose import sidecar_dose

    dose = sidecar_dose(sidecar)
    truth = integrated_decays(370e6, 45 * 60, 600, F18_HALF_LIFE_S) / integrated_decays(
        activity_bq, delay_s, frame_s, F18_HALF_LIFE_S
    )
    assert header_drf(dose, REFERENCE) == pytest.approx(truth, rel=0.01)


def test_a_sidecar_without_the_dose_gives_none_and_impossible_fields_a_named_error(tmp_path):
    from bundle.deploy.header_dose import read_sidecar_dose, sidecar_dose

    assert sidecar_dose({"TracerRadionuclide": "F18"}) is None
    assert sidecar_dose(bids_sidecar(InjectedRadioactivityUnits=None)) is None
    for bad, match in (
        (bids_sidecar(units="counts"), "InjectedRadioactivityUnits 'counts'"),
        (bids_sidecar(TracerRadionuclide="Tc99m"), "TracerRadionuclide 'Tc99m'"),
        (bids_sidecar(injection_s=3000.0), "before the injection"),
        (bids_sidecar(activity=0.0), "must be > 0"),
        (bids_sidecar(InjectionStart="09:30"), "InjectionStart must be a number"),
    ):
        with pytest.raises(InputDataError, match=match):
            sidecar_dose(bad, "x.json")
    broken = tmp_path / "s.json"
    broken.write_text("{not json")
    with pytest.raises(InputDataError, match="s.json: not a readable JSON sidecar"):
        read_sidecar_dose(broken)


def test_a_nifti_study_reads_its_drf_from_its_bids_sidecar(tmp_path, caplog):
    """The input folder attaches `<name>.json` to the study `<name>.nii.gz` (an orphan JSON is skipped with the
    reason); with a reference protocol the study's DRF comes from it, named as the sidecar's; a rerun after the
    sidecar changed is told so."""
    import json
    import logging

    import nibabel as nib
    import torch

    from bundle.deploy.dose_input import DoseInput
    from bundle.deploy.study_finder import scan_input
    from bundle.deploy.study_identity import identity_differences, run_identity, study_identity

    volume = np.random.default_rng(0).random((8, 8, 4)).astype(np.float32) + 1.0
    nib.save(nib.Nifti1Image(volume, np.eye(4)), str(tmp_path / "pet.nii.gz"))
    (tmp_path / "pet.json").write_text(json.dumps(bids_sidecar(activity=37.0)))  # a tenth: DRF 10
    (tmp_path / "other.json").write_text("{}")
    studies, skipped = scan_input(tmp_path)
    assert [s["name"] for s in studies] == ["pet"] and studies[0]["sidecar"].endswith("pet.json")
    assert [(p.endswith("other.json"), "not the BIDS sidecar" in r) for p, r in skipped] == [(True, True)]
    reference = {"activity_mbq": 370.0, "uptake_min": 45.0, "frame_min": 10.0}
    dose = DoseInput(None, None, (2.0, 200.0), reference)
    dose.check()
    dose("pet", torch.ones(1, 8, 8, 4), study=studies[0])
    assert dose.used["pet"]["source"] == "sidecar" and dose.used["pet"]["drf"] == pytest.approx(10.0, rel=0.01)
    estimator = {"floor": 0.0, "slope": 1.0}  # the image "looks like" a DRF far from 10
    with caplog.at_level(logging.WARNING, logger="bundle.deploy.dose_input"):
        DoseInput(None, estimator, (2.0, 200.0), reference)("pet", torch.ones(1, 8, 8, 4), study=studies[0])
    assert "the BIDS sidecar says DRF 10" in caplog.text and "more than 2x apart" in caplog.text
    run = run_identity("torch", {"torch": "models/model.pt"}, reference_protocol=reference)
    before = study_identity(studies[0], run)
    (tmp_path / "pet.json").write_text(json.dumps(bids_sidecar(activity=18.5)))
    assert [d.split(" ")[0] for d in identity_differences(before, study_identity(studies[0], run))] == ["sidecar"]
