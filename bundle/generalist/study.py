"""Every method at every dose level of every test set, scored with the bundle's one metric code."""

from __future__ import annotations

import logging
from typing import Any, Callable, Mapping, Sequence

from ..baselines.per_fold import tuned_baselines
from ..baselines.tuning import TunedBaseline
from ..data import at_dose, lesion_kinds, load_datalist
from ..io import load_ras_volume
from ..paper.scoring import SubjectReferences
from ..quantification import evaluation_record

__all__ = ["INPUT", "GAUSSIAN", "evaluate_test_sets", "fit_cohort_drf_estimator", "tuned_gaussians"]

logger = logging.getLogger(__name__)
INPUT, GAUSSIAN = "low dose", "gaussian"
Denoise = Callable[[Any, float], Any]


def tuned_gaussians(tuning_datalist: str, drfs: Sequence[float], subjects: int) -> dict[float, TunedBaseline]:
    """A 3D Gaussian post-filter tuned (PSNR in the brain mask) at each DRF on the first `subjects` training
    subjects."""
    items = load_datalist(tuning_datalist)[:subjects]
    out = {}
    for drf in drfs:
        out[float(drf)] = tuned_baselines([GAUSSIAN], at_dose(items, float(drf)))[GAUSSIAN]
        logger.info("Gaussian tuned at DRF %g on %d subjects: %s", drf, len(items), out[float(drf)].params)
    return out


def fit_cohort_drf_estimator(datalist: str, drfs: Sequence[float], subjects: int) -> dict[str, Any]:
    """The DRF estimator (`metrics.dose_estimation`) fitted on the first `subjects` of a cohort at every DRF."""
    from ..metrics.dose_estimation import fit_drf_estimator
    from ..metrics.noise import estimate_noise_level

    items = load_datalist(datalist)[:subjects]
    levels, known = [], []
    for drf in drfs:
        for item in at_dose(items, float(drf)):
            levels.append(estimate_noise_level(load_ras_volume(item["image"])))
            known.append(float(drf))
    return fit_drf_estimator(levels, known)


def evaluate_test_sets(
    test_sets: Mapping[str, str],
    drfs: Sequence[float],
    denoisers: Mapping[str, Denoise],
    gaussians: Mapping[float, TunedBaseline],
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Evaluation records of the input, the tuned Gaussian and each denoiser, for every subject of every test set
    ({name: datalist}) at every DRF; each record's `subject` is '<set>/<subject>' and `test_set` names its set."""
    from tqdm.auto import tqdm

    kinds_of = {path: lesion_kinds(path) for path in test_sets.values()}
    jobs = [(name, path, item) for name, path in test_sets.items() for item in load_datalist(path)]
    records = []
    for name, path, item in tqdm(jobs, desc="evaluating", unit="subject", disable=not progress):
        kinds = kinds_of[path].get(item["subject"])
        references = SubjectReferences(item)
        subject = f"{name}/{item['subject']}"
        for drf in drfs:
            low = load_ras_volume(at_dose([item], float(drf))[0]["image"])
            outputs = {INPUT: low, GAUSSIAN: gaussians[float(drf)](low, references.voxel_size_mm)}
            outputs.update({method: denoise(low, float(drf)) for method, denoise in denoisers.items()})
            for method, image in outputs.items():
                record = evaluation_record(subject, float(drf), method, references.evaluate(image), kinds)
                records.append(dict(record, test_set=name))
    return records
