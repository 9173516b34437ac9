"""Records of an earlier paper report reused in a new one (a study too long for one machine session, assembled
from parts), merged so that records of other simulated data are only ever paired with records of the same data."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from ..errors import ConfigValueError, InputDataError
from ..io import read_json
from ..quantification import Records

__all__ = ["load_reused", "merge_reused", "scores_at"]


def scores_at(records: Sequence[dict[str, Any]], drf: float | None) -> dict[str, dict[str, dict[str, float]]]:
    """{method: {subject: {nrmse, psnr, ssim}}} of the records shown at one dose level (the paper's comparison)."""
    table = Records(records)
    return {
        m: {s: {k: r[k] for k in ("nrmse", "psnr", "ssim")} for s, r in table.of(drf, m).items()}
        for m in table.methods
        if table.of(drf, m)
    }


def merge_reused(
    fresh: Sequence[dict[str, Any]], stored: Sequence[dict[str, Any]], methods: Sequence[str], data: str
) -> list[dict[str, Any]]:
    """This run's records plus the stored records of `methods`. Where the stored input (low dose) of a subject and
    dose level differs from this run's, the stored data were another simulation (another machine's noise): those
    records are tagged `data` and come with the stored records of every other method there (`pairing_only`: never
    shown, only paired with), so that they are only ever compared with what was scored on the same data."""
    metrics = ("nrmse", "psnr", "ssim")
    inputs = {(r["drf"], r["subject"]): r for r in fresh if r["method"] == "low dose"}
    stored_inputs = {(r.get("drf"), r["subject"]): r for r in stored if r["method"] == "low dose"}

    def same_data(drf: float | None, subject: str) -> bool:
        a, b = inputs.get((drf, subject)), stored_inputs.get((drf, subject))
        return a is not None and b is not None and all(abs(a[k] - b[k]) <= 1e-9 for k in metrics)

    merged = list(fresh)
    for r in stored:
        if same_data(r.get("drf"), r["subject"]):
            if r["method"] in methods:
                merged.append(r)
        else:
            merged.append(dict(r, data=data, **({} if r["method"] in methods else {"pairing_only": True})))
    return merged


def _drf_order(drf: float | None) -> tuple[bool, float]:
    """Sort key for dose levels: numeric DRFs ascending, the unnamed level (None) last."""
    return drf is None, drf or 0.0


def load_reused(reuse_records: Path | None, reuse_methods: Sequence[str]) -> dict[str, Any]:
    """The records of `reuse_methods` from `reuse_records`, with that file's command and machine; one-line errors
    for a missing or malformed file and for a method it does not hold."""
    if not reuse_methods:
        return {"records": []}
    if reuse_records is None:
        raise ConfigValueError("setting reuse methods: needs --reuse-records, the results.json to take them from")
    if "low dose" in reuse_methods:
        raise ConfigValueError("setting reuse methods: 'low dose' is always scored afresh; name only methods")
    stored = read_json(reuse_records, "earlier report's results")
    records = stored.get("records") if isinstance(stored, dict) else None
    if not isinstance(records, list):
        raise InputDataError(f"{reuse_records}: has no 'records' list (a results.json of reproduce_paper.py)")
    held = {r.get("method") for r in records}
    missing = [m for m in reuse_methods if m not in held]
    if missing:
        raise ConfigValueError(
            f"setting reuse methods: {missing} not in {reuse_records} (it holds {sorted(held - {None})})"
        )
    kept = [r for r in records if r["method"] in reuse_methods]
    return {
        "records": records,  # every stored record: the other methods' pair with the reused ones on their data
        "levels": {m: sorted({r.get("drf") for r in kept if r["method"] == m}, key=_drf_order) for m in reuse_methods},
        "command": stored.get("command", "?"),
        "machine": stored.get("machine", "not recorded"),
        "reused_levels": {(r["method"], r.get("drf")) for r in kept},  # (method, drf) pairs taken from the file
    }
