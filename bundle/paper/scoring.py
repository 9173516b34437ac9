"""Scoring of the paper study: every method's predictions at every dose level, evaluated against one subject's
references with one metric code (`metrics.evaluate_volume`), as evaluation records."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from ..data import datalist_drf, lesion_kinds
from ..io import load_ras_volume, read_json, write_json
from ..quantification import evaluation_record
from ..quantification.references import SubjectReferences

__all__ = ["display_name", "score_records"]


def display_name(baseline: str) -> str:
    """The report's name of a classical baseline: Gaussian, NLM, BM3D."""
    return "Gaussian" if baseline == "gaussian" else baseline.upper()


def _file_identity(path: str) -> tuple:
    stat = Path(path).stat()
    return (str(Path(path).resolve()), stat.st_mtime_ns, stat.st_size)


def score_records(
    items: list[dict[str, Any]],
    datalist: str,
    predictions: dict[float | None, dict[str, dict[str, str]]],
    subjects: Sequence[str],
    cache_path: Path,
) -> list[dict[str, Any]]:
    """Evaluation records (`quantification`) of the low-dose input and every method of `predictions` ({drf: {method:
    {subject: file}}}), for every test subject at every dose level: one metric code for all. Scores are cached in
    `cache_path` by file identity, so a re-run only scores new or changed predictions."""
    cache = read_json(cache_path, "score cache") if cache_path.is_file() else {}
    kinds = lesion_kinds(datalist)
    primary = datalist_drf(datalist)
    records = []
    for item in (i for i in items if i["subject"] in subjects):
        references = SubjectReferences(item)
        for drf, methods in predictions.items():
            low = item["image"] if drf is None or drf == primary else item[f"image_drf{drf:g}"]
            paths = {"low dose": low, **{m: p[item["subject"]] for m, p in methods.items() if item["subject"] in p}}
            for method, path in paths.items():
                key = repr((method, drf, item["subject"], _file_identity(path)))
                if key not in cache:
                    result = references.evaluate(load_ras_volume(path))
                    cache[key] = evaluation_record(item["subject"], drf, method, result, kinds.get(item["subject"]))
                records.append(cache[key])
        write_json(cache, cache_path, overwrite=True)
    return records
