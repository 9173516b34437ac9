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
