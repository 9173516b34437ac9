"""Every method at every dose level of every test set, scored with the bundle's one metric code."""

from __future__ import annotations

import logging
from typing import Any, Callable, Mapping, Sequence

from ..baselines.per_fold import tune_on, tuned_baselines
from ..baselines.registry import make_baseline
from ..baselines.tuning import TunedBaseline, load_cases, score_grid
from ..data import at_dose, lesion_kinds, load_datalist
from ..io import load_ras_volume
from ..quantification import evaluation_record
from ..quantification.references import SubjectReferences

__all__ = [
    "GAUSSIAN",
    "INPUT",
    "LOO_GAUSSIAN",
    "evaluate_test_sets",
    "fit_cohort_drf_estimator",
    "leave_one_out_gaussians",
    "tuned_filters",
    "tuned_gaussians",
]

logger = logging.getLogger(__name__)
INPUT, GAUSSIAN = "low dose", "gaussian"
LOO_GAUSSIAN = "gaussian-loo"  # tuned on the test set's own other subjects: the stricter linear reference
Denoise = Callable[[str, float, Mapping[str, Any]], Any]  # (low-dose NIfTI path, DRF, datalist item) -> RAS volume


def tuned_filters(
    tuning_datalist: str, drfs: Sequence[float], subjects: int, baselines: Sequence[str] = (GAUSSIAN,)
) -> dict[str, dict[float, TunedBaseline]]:
    """Each classical baseline of `baselines` (the 3D Gaussian post-filter, and e.g. the bilateral and guided
    filters) tuned (PSNR in the brain mask) at each DRF on the first `subjects` training subjects:
    {baseline: {DRF: tuned filter}}."""
    items = load_datalist(tuning_datalist)[:subjects]
    out: dict[str, dict[float, TunedBaseline]] = {name: {} for name in baselines}
    for drf in drfs:
        tuned = tuned_baselines(list(baselines), at_dose(items, float(drf)))
        for name in baselines:
            out[name][float(drf)] = tuned[name]
            logger.info("%s tuned at DRF %g on %d subjects: %s", name, drf, len(items), tuned[name].params)
    return out


def tuned_gaussians(tuning_datalist: str, drfs: Sequence[float], subjects: int) -> dict[float, TunedBaseline]:
    """The 3D Gaussian post-filter of `tuned_filters`: {DRF: tuned filter}."""
    return tuned_filters(tuning_datalist, drfs, subjects)[GAUSSIAN]


def leave_one_out_gaussians(items: Sequence[dict[str, Any]], drf: float) -> dict[str, TunedBaseline]:
    """For each subject of a test set, the 3D Gaussian (grid with 0 mm, no filtering, included) tuned at `drf` on
    the set's other subjects: the set's own protocol, never the subject itself. {subject: tuned filter}."""
    method = make_baseline(GAUSSIAN)
    cases = load_cases(at_dose(items, float(drf)))
    if len(cases) < 2:
        return {}
    scores = score_grid(method, method.default_grid, cases)
    return {
        case.subject: TunedBaseline(
            LOO_GAUSSIAN, method, tune_on(method, scores, [j for j in range(len(cases)) if j != i])
        )
        for i, case in enumerate(cases)
    }


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
    filters: Mapping[str, Mapping[float, TunedBaseline]],
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Evaluation records of the input, the classical baselines tuned on the training cohort (`filters`: {name:
    {DRF: tuned filter}}, the Gaussian under `GAUSSIAN`; may be empty), the Gaussian tuned leave-one-out on the
    test set itself (`LOO_GAUSSIAN`, the targets' reference) and each denoiser ((low-dose path, DRF, the subject's
    datalist item, whose MR an MR-guided network reads) -> volume), for
    every subject of every test set ({name: datalist}) at every DRF; each record's `subject` is '<set>/<subject>'
    and `test_set` names its set, and the LOO Gaussian's record holds its parameters."""
    from tqdm.auto import tqdm

    kinds_of = {path: lesion_kinds(path) for path in test_sets.values()}
    items_of = {name: load_datalist(path) for name, path in test_sets.items()}
    loo = {(name, float(d)): leave_one_out_gaussians(items, d) for name, items in items_of.items() for d in drfs}
    jobs = [(name, test_sets[name], item) for name, items in items_of.items() for item in items]
    records = []
    for name, datalist, item in tqdm(jobs, desc="evaluating", unit="subject", disable=not progress):
        kinds = kinds_of[datalist].get(item["subject"])
        references = SubjectReferences(item)
        subject = f"{name}/{item['subject']}"
        guides: dict[str, Any] = {}  # a guided filter's guide (e.g. the T1), read once per subject
        for drf in drfs:
            path = at_dose([item], float(drf))[0]["image"]
            low = load_ras_volume(path)
            outputs = {INPUT: low}
            for method, by_drf in filters.items():
                if float(drf) in by_drf:
                    tuned = by_drf[float(drf)]
                    if tuned.guide_key in item and tuned.guide_key not in guides:
                        guides[tuned.guide_key] = load_ras_volume(item[tuned.guide_key])
                    outputs[method] = tuned(low, references.voxel_size_mm, guides.get(tuned.guide_key))
            if item["subject"] in loo[(name, float(drf))]:
                outputs[LOO_GAUSSIAN] = loo[(name, float(drf))][item["subject"]](low, references.voxel_size_mm)
            outputs.update({method: denoise(path, float(drf), item) for method, denoise in denoisers.items()})
            for method, image in outputs.items():
                record = dict(evaluation_record(subject, float(drf), method, references.evaluate(image), kinds))
                if method == LOO_GAUSSIAN:
                    record["params"] = dict(loo[(name, float(drf))][item["subject"]].params)
                records.append(dict(record, test_set=name))
    return records
