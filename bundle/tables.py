"""Result tables: CSV files written atomically and markdown tables for reports and the console."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from .io import write_text

__all__ = ["format_table", "summarise", "write_csv"]


def write_csv(rows: Sequence[Mapping[str, Any]], path: str | Path, overwrite: bool = True) -> Path:
    """Write dict rows to CSV atomically (columns in first-seen order)."""
    fields: list[str] = []
    for row in rows:
        fields += [k for k in row if k not in fields]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields)
    writer.writeheader()
    for row in rows:
        writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
    return write_text(buf.getvalue(), path, overwrite=overwrite)


def format_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """A markdown table of `columns` (floats with 4 significant digits)."""

    def fmt(v: Any) -> str:
        return f"{v:.4g}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(fmt(r.get(c, "")) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def summarise(rows: Sequence[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Mean and sample sd over subjects of every numeric column."""
    out: dict[str, dict[str, float]] = {}
    for key in rows[0]:
        values = [r[key] for r in rows if isinstance(r.get(key), (int, float))]
        if values and key != "fold":
            arr = np.asarray(values, dtype=float)
            out[key] = {"mean": float(arr.mean()), "sd": float(arr.std(ddof=1)) if len(arr) > 1 else 0.0}
    return out
