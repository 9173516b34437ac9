"""MLflow tracking that survives interrupted and resumed runs without duplicating history."""

from __future__ import annotations

import logging
from typing import Any

from monai.handlers import MLFlowHandler

__all__ = ["ResumableMLFlowHandler", "flatten_config"]

logger = logging.getLogger(__name__)


class ResumableMLFlowHandler(MLFlowHandler):
    """MONAI's MLFlowHandler, but a metric already logged at a step is not logged again.

    A run killed after logging epoch e but before checkpointing it redoes epoch e on restart; with the
    same seed the values are the same, and this handler keeps one entry per step. With a fixed run name
    the handler reattaches to the unfinished run, so a resumed fold continues its own history.
    """

    def _log_metrics(self, metrics: dict[str, Any], step: int | None = None) -> None:
        if step is not None and self.cur_run is not None and metrics:
            run_id = self.cur_run.info.run_id
            fresh = {}
            for key, value in metrics.items():
                history = self.client.get_metric_history(run_id, key)
                if any(m.step == step for m in history):
                    continue
                fresh[key] = value
            metrics = fresh
        if metrics:
            super()._log_metrics(metrics, step=step)


def flatten_config(config: Any, prefix: str = "", max_len: int = 500) -> dict[str, str]:
    """Flatten a (nested) config into `a.b.c -> str(value)` pairs suitable for MLflow params."""
    out: dict[str, str] = {}
    if isinstance(config, dict):
        for key, value in config.items():
            out.update(flatten_config(value, f"{prefix}{key}.", max_len))
    elif isinstance(config, (list, tuple)) and any(isinstance(v, (dict, list)) for v in config):
        for i, value in enumerate(config):
            out.update(flatten_config(value, f"{prefix}{i}.", max_len))
    else:
        text = str(config)
        out[prefix.rstrip(".") or "value"] = text if len(text) <= max_len else text[: max_len - 3] + "..."
    return out
