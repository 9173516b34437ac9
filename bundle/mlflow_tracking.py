"""All MLflow code of the bundle: the Ignite handler the training configs attach, and the tracking client
that cross-validation and the baselines log folds, test metrics, artifacts and summaries with.

Both survive interrupted and resumed runs without duplicating history: a metric already logged at a step
is not logged again, a run is found again by its name, and params are only added.
"""

from __future__ import annotations

import logging
import math
import os
import time
from pathlib import Path
from typing import Any, Iterable

from monai.handlers import MLFlowHandler

from .errors import ConfigValueError

__all__ = [
    "ResumableMLFlowHandler",
    "TrackingStore",
    "check_tracking_store",
    "default_tracking_uri",
    "flatten_config",
    "mlflow_key",
]

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


def mlflow_key(key: str) -> str:
    """A string MLflow accepts as a param or metric name."""
    cleaned = "".join(c if c.isalnum() or c in "_-./ " else "." for c in key)
    return cleaned[:250]


SQLITE_MAGIC = b"SQLite format 3\x00"


def check_tracking_store(tracking_uri: str | None, timeout_s: float = 5.0) -> None:
    """Fail in seconds, with one line naming `tracking_uri`, when the MLflow store cannot be used: a server that does
    not answer (MLflow itself retries for minutes), or a SQLite file that is not a database or cannot be written."""
    if not tracking_uri:
        return
    uri = str(tracking_uri)
    if uri.startswith(("http://", "https://")):
        import urllib.error
        import urllib.request

        try:
            with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout_s) as response:
                response.read(64)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", None) or exc
            raise ConfigValueError(f"setting tracking_uri: the MLflow server {uri} does not answer ({reason})") from exc
        return
    if not uri.startswith("sqlite:///"):
        return
    path = Path(uri[len("sqlite:///") :])
    folder = path.parent
    if path.exists():
        try:
            with open(path, "rb") as fh:
                header = fh.read(len(SQLITE_MAGIC))
        except OSError as exc:
            raise ConfigValueError(f"setting tracking_uri: {path} cannot be read ({exc.strerror or exc})") from exc
        if header and header != SQLITE_MAGIC:
            raise ConfigValueError(f"setting tracking_uri: {path} is not an SQLite database")
        if not os.access(path, os.W_OK) or not os.access(folder, os.W_OK):
            raise ConfigValueError(f"setting tracking_uri: {path} is read-only (the file or its folder)")
    elif folder.exists() and not os.access(folder, os.W_OK):
        raise ConfigValueError(f"setting tracking_uri: the folder of {path} cannot be written")


def default_tracking_uri(output_dir: str | Path) -> str:
    """A SQLite tracking store under the output folder (MLflow's recommended local backend)."""
    from monai.utils import path_to_sqlite_uri

    return path_to_sqlite_uri(str(Path(output_dir).resolve() / "mlruns.db"))


class TrackingStore:
    """One MLflow experiment of a tracking store: find-or-create runs by name, log params, metrics and artifacts once.

    Args:
        tracking_uri: MLflow tracking URI (SQLite file or server).
        experiment_name: the experiment holding the runs (created on first use; concurrent creation is tolerated).
    """

    def __init__(self, tracking_uri: str, experiment_name: str) -> None:
        import mlflow

        check_tracking_store(tracking_uri)
        self.tracking_uri = tracking_uri
        self.experiment_name = experiment_name
        self.client = mlflow.MlflowClient(tracking_uri=tracking_uri)
        self._experiment: str | None = None

    @property
    def experiment_id(self) -> str:
        if self._experiment is None:
            self._experiment = self._find_or_create_experiment()
        return self._experiment

    def _find_or_create_experiment(self) -> str:
        from monai.utils import path_to_uri

        exp = self.client.get_experiment_by_name(self.experiment_name)
        if exp is not None:
            return exp.experiment_id
        location = None
        if self.tracking_uri.startswith("sqlite:///"):
            location = path_to_uri(Path(self.tracking_uri[len("sqlite:///") :]).parent / "mlruns")
        try:
            return self.client.create_experiment(self.experiment_name, artifact_location=location)
        except Exception:  # noqa: BLE001 - created concurrently by a parallel fold job
            time.sleep(1.0)
            return self.client.get_experiment_by_name(self.experiment_name).experiment_id

    def runs_named(self, run_name: str) -> list:
        return self.client.search_runs([self.experiment_id], filter_string=f"attributes.run_name = '{run_name}'")

    def run(self, run_name: str) -> str:
        """The id of the unfinished run called `run_name`, else of a new one."""
        active = [r for r in self.runs_named(run_name) if r.info.status != "FINISHED"]
        if active:
            return active[0].info.run_id
        return self.client.create_run(self.experiment_id, run_name=run_name).info.run_id

    def run_by_id_or_name(self, run_id: str | None, run_name: str) -> str:
        """`run_id` when this store holds it, else the run called `run_name` (a fold tracked in another store)."""
        if run_id:
            try:
                self.client.get_run(run_id)
                return run_id
            except Exception:  # noqa: BLE001 - MLflow raises its own error types for an unknown run
                logger.info("run %s is not in %s: logging to run %s", run_id, self.tracking_uri, run_name)
        return self.run(run_name)

    def replace_run(self, run_name: str) -> str:
        """A new run called `run_name` after deleting earlier ones (for derived runs such as a summary)."""
        for old in self.runs_named(run_name):
            self.client.delete_run(old.info.run_id)
        return self.client.create_run(self.experiment_id, run_name=run_name).info.run_id

    def log_params(self, run_id: str, params: dict[str, Any]) -> None:
        """Params not yet on the run (MLflow params are immutable), in batches of 100."""
        from mlflow.entities import Param

        existing = self.client.get_run(run_id).data.params
        fresh = [Param(mlflow_key(k), str(v)[:6000]) for k, v in params.items() if mlflow_key(k) not in existing]
        for i in range(0, len(fresh), 100):
            self.client.log_batch(run_id, params=fresh[i : i + 100])

    def log_metrics_once(self, run_id: str, metrics: dict[str, float]) -> None:
        """Finite metrics not yet on the run."""
        from mlflow.entities import Metric

        logged = self.client.get_run(run_id).data.metrics
        now = int(time.time() * 1000)
        fresh = [Metric(k, float(v), now, 0) for k, v in metrics.items() if k not in logged and math.isfinite(float(v))]
        if fresh:
            self.client.log_batch(run_id, metrics=fresh)

    def log_artifacts(self, run_id: str, files: Iterable[tuple[Path, str | None]]) -> None:
        """Each existing file under its artifact sub-folder (None: the run's root)."""
        for path, folder in files:
            if Path(path).is_file():
                self.client.log_artifact(run_id, str(path), folder)

    def set_tags(self, run_id: str, tags: dict[str, Any]) -> None:
        for key, value in tags.items():
            self.client.set_tag(run_id, key, str(value))

    def finish(self, run_id: str) -> None:
        self.client.set_terminated(run_id, "FINISHED")
