"""Crash-safe, resumable training checkpoints (an Ignite handler).

MONAI's CheckpointSaver writes in place (ignite's DiskSaver with atomic=False), so a crash can leave a
truncated file. This handler writes every checkpoint under a temporary name and renames it, and resumes
from the last completed epoch.

Files in `save_dir`:
- `last.pt`: after every epoch: network, optimiser, LR scheduler, engine state (epoch, iteration), random
  state and the per-epoch history; what a restarted run resumes from;
- `best.pt`: network weights of the epoch with the best validation key metric;
- `model.pt`: network weights at the end of training.
All load with `torch.load(..., weights_only=True)`: no arbitrary unpickling.
"""

from __future__ import annotations

import csv
import io
import logging
import math
import os
from pathlib import Path
from typing import Any, Mapping

import torch
from ignite.engine import Engine, Events
from ignite.handlers import Checkpoint

from ..errors import InputDataError, OutputExistsError
from ..io import clean_stale_temporaries, write_text
from ..weights import load_checkpoint, save_weights

__all__ = ["ResumableCheckpointer"]

logger = logging.getLogger(__name__)


class ResumableCheckpointer:
    """Save `last.pt` every epoch (atomically) and resume from it when a run is restarted.

    Args:
        save_dir: checkpoint folder.
        network, optimizer, lr_scheduler: the objects to save and restore.
        random_state: a `TrainingRandomState` (restored with the rest, so a resumed run repeats the
            uninterrupted run exactly).
        resume: resume from `last.pt` when it exists; otherwise an existing `last.pt` is an error unless
            `overwrite` (a finished or running experiment is never silently replaced).
        validator: the validation engine; its metrics join the epoch's history (attach the
            ValidationHandler before this handler so validation runs before the save).
        key_metric: validation metric name for `best.pt` (higher is better unless `key_metric_mode='min'`).
        settings: the run's settings; saved in `last.pt`, and a restart with different settings is refused
            (except `num_epochs`, which may be raised to train longer).
        seed: recorded in `<save_dir>/manifest.json` with the library versions.
    """

    def __init__(
        self,
        save_dir: str | os.PathLike,
        network: torch.nn.Module,
        optimizer: torch.optim.Optimizer | None = None,
        lr_scheduler: Any = None,
        random_state: Any = None,
        resume: bool = True,
        overwrite: bool = False,
        validator: Engine | None = None,
        key_metric: str | None = None,
        key_metric_mode: str = "max",
        settings: Mapping[str, Any] | None = None,
        seed: int | None = None,
    ) -> None:
        self.save_dir = Path(save_dir)
        self.network = network
        self.optimizer = optimizer
        self.lr_scheduler = lr_scheduler
        self.random_state = random_state
        self.resume = resume
        self.overwrite = overwrite
        self.validator = validator
        self.key_metric = key_metric
        self.key_metric_mode = key_metric_mode
        self.settings = {k: str(v) for k, v in dict(settings or {}).items()}
        self.seed = seed
        self.history: list[dict[str, float]] = []
        self.best_value: float | None = None
        self.resumed_from_epoch = 0

    @property
    def last_path(self) -> Path:
        return self.save_dir / "last.pt"

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.STARTED, self._on_started)
        engine.add_event_handler(Events.EPOCH_COMPLETED, self._on_epoch_completed)
        engine.add_event_handler(Events.COMPLETED, self._on_completed)
        if self.validator is not None:
            self.validator.add_event_handler(Events.EPOCH_COMPLETED, lambda v: self.record(engine, v.state.metrics))

    def _objects(self, engine: Engine) -> dict[str, Any]:
        objs: dict[str, Any] = {"network": self.network, "trainer": engine}
        if self.optimizer is not None:
            objs["optimizer"] = self.optimizer
        if self.lr_scheduler is not None:
            objs["lr_scheduler"] = self.lr_scheduler
        if self.random_state is not None:
            objs["random_state"] = self.random_state
        return objs

    def _on_started(self, engine: Engine) -> None:
        """Resume from `last.pt` or start afresh; a refused restart changes nothing on disk (the manifest is
        written only once the run goes ahead)."""
        self.save_dir.mkdir(parents=True, exist_ok=True)
        for stale in clean_stale_temporaries(self.save_dir):
            logger.info("removed %s, left by an interrupted run", stale)
        self._resume_or_start(engine)
        from ..provenance import write_manifest

        write_manifest(self.save_dir, seed=self.seed, settings=self.settings)

    def _resume_or_start(self, engine: Engine) -> None:
        if not self.last_path.exists():
            return
        if not self.resume:
            if not self.overwrite:
                raise OutputExistsError(
                    f"{self.last_path}: a training run already exists here; resume it, choose another output_dir or set overwrite"
                )
            return
        checkpoint = load_checkpoint(self.last_path)
        saved_settings = dict(checkpoint.get("settings", {}))
        changed = sorted(
            k
            for k in set(saved_settings) | set(self.settings)
            if k != "num_epochs" and str(saved_settings.get(k)) != str(self.settings.get(k))
        )
        if changed and not self.overwrite:
            key = changed[0]
            raise OutputExistsError(
                f"{self.last_path}: the run here used different settings ({key}: {saved_settings.get(key)!r} -> "
                f"{self.settings.get(key)!r}); use another output_dir, or set overwrite to start afresh"
            )
        if changed:
            logger.warning("overwrite: discarding the previous run in %s", self.save_dir)
            return
        own = self.network.state_dict()
        saved = checkpoint.get("network", {})
        if set(saved) != set(own) or any(tuple(saved[k].shape) != tuple(own[k].shape) for k in own):
            raise InputDataError(
                f"checkpoint {self.last_path}: written for a different network architecture; use another output_dir"
            )
        prior_max_epochs = engine.state.max_epochs
        objs = self._objects(engine)
        Checkpoint.load_objects(to_load={k: v for k, v in objs.items() if k in checkpoint}, checkpoint=checkpoint)
        if engine.state.epoch > prior_max_epochs:
            raise InputDataError(
                f"checkpoint {self.last_path}: has {engine.state.epoch} epochs, more than num_epochs={prior_max_epochs}"
            )
        engine.state.max_epochs = prior_max_epochs
        self.history = [dict(h) for h in checkpoint.get("history", [])]
        self.best_value = checkpoint.get("best_value")
        self.resumed_from_epoch = engine.state.epoch
        logger.info("resumed from %s at epoch %d", self.last_path, engine.state.epoch)

    def record(self, engine: Engine, values: Mapping[str, float]) -> None:
        """Add metrics to the current epoch's history entry (called by validation before the save)."""
        entry = self._entry(engine.state.epoch)
        entry.update({k: float(v) for k, v in values.items() if isinstance(v, (int, float))})

    def _entry(self, epoch: int) -> dict[str, float]:
        if not self.history or self.history[-1]["epoch"] != epoch:
            self.history.append({"epoch": epoch})
        return self.history[-1]

    def _on_epoch_completed(self, engine: Engine) -> None:
        entry = self._entry(engine.state.epoch)
        entry.update({k: float(v) for k, v in engine.state.metrics.items() if isinstance(v, (int, float))})
        if self.optimizer is not None:
            entry["lr"] = float(self.optimizer.param_groups[0]["lr"])
        if self.key_metric and self.key_metric in entry and math.isfinite(entry[self.key_metric]):
            value = entry[self.key_metric]
            better = self.best_value is None or (
                value > self.best_value if self.key_metric_mode == "max" else value < self.best_value
            )
            if better:
                self.best_value = value
                save_weights(
                    {"network": self.network.state_dict(), "epoch": engine.state.epoch, self.key_metric: value},
                    self.save_dir / "best.pt",
                )
        state = {k: v.state_dict() for k, v in self._objects(engine).items()}
        state["history"] = self.history
        state["best_value"] = self.best_value
        state["settings"] = {k: str(v) for k, v in self.settings.items()}
        save_weights(state, self.last_path)
        self._write_history()

    def _write_history(self) -> None:
        keys = sorted({k for h in self.history for k in h} - {"epoch"})
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=["epoch", *keys])
        writer.writeheader()
        writer.writerows(self.history)
        write_text(buf.getvalue(), self.save_dir / "history.csv", overwrite=True)

    def _on_completed(self, engine: Engine) -> None:
        save_weights({"network": self.network.state_dict(), "epoch": engine.state.epoch}, self.save_dir / "model.pt")
