"""The one training loop of model_build: optimizer, schedule, epochs, checkpoints, history and log.

What is learnt is passed in as an ``Objective`` (``train.py``: labels with augmentation; ``distill.py``: a bank
of views, its teachers' answers and posed faces). The loop owns the rest:

- Adam, and either ``cosine`` (linear warm-up, then half a cosine to 0 over ``epochs`` or ``time_budget_s``,
  whichever ends first; the final weights are ``best.pt``: nothing is selected on the watched set) or
  ``plateau`` (ReduceLROnPlateau and early stopping on the watched set's weighted F1, ``best.pt`` on improvement);
- after every epoch: the watched set's figures into the history, ``best.pt``, and ``last.pt`` (model, optimizer,
  scheduler, the batch generator and torch's RNG), so a rerun with the same checkpoint folder continues where
  the last finished epoch left off, on another machine too, with the same weights as a run never stopped
  (``tests/model_build/test_training.py``); a run paused by SIGSTOP simply continues;
- bfloat16 autocast on CUDA when asked, falling back to float32 if a kernel is missing.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from model_build.metrics import ClassificationReport
from model_build.mini_xception import MiniXception, count_parameters


@dataclass(frozen=True)
class LoopSettings:
    name: str
    epochs: int
    lr: float
    weight_decay: float
    seed: int
    schedule: str = "cosine"  # "cosine": nothing selected; "plateau": ReduceLROnPlateau + early stop on val
    warmup_fraction: float = 0.02
    time_budget_s: float = 0.0  # cosine: anneal within it; plateau: stop before an epoch that would overrun
    lr_patience: int = 5
    lr_factor: float = 0.5
    early_stop_patience: int = 15
    amp: bool = False  # bfloat16 autocast (CUDA only: on a CPU without AMX it is slower, not faster)

    @classmethod
    def of(cls, config: Any, **fixed: Any) -> LoopSettings:
        """The loop's settings from a run's config (the fields they share), ``fixed`` overriding."""
        names = [f.name for f in fields(cls)]
        return cls(**{name: getattr(config, name) for name in names if hasattr(config, name)} | fixed)


class Objective(Protocol):
    """One epoch's samples and one step's loss; every random draw comes from the loop's ``generator``."""

    steps_per_epoch: int

    def begin_epoch(self, generator: torch.Generator) -> None:
        """Draw the epoch's order of samples."""

    def batch(self, step: int, generator: torch.Generator) -> tuple:
        """The step's inputs (augmented, on the training device)."""

    def loss(self, model: MiniXception, batch: tuple, epoch: int, step: int, generator: torch.Generator):
        """The step's scalar loss (run under autocast when it is on)."""


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def cosine_lr(base_lr: float, progress: float, warmup_fraction: float) -> float:
    """Linear warm-up, then half a cosine from ``base_lr`` down to 0 at progress 1."""
    if progress < warmup_fraction:
        return base_lr * max(progress, 1e-3) / warmup_fraction
    tail = (progress - warmup_fraction) / max(1.0 - warmup_fraction, 1e-9)
    return base_lr * 0.5 * (1.0 + np.cos(np.pi * min(tail, 1.0)))


class RunClock:
    """Progress of a cosine run: the larger of steps done over planned steps and time over budget
    (``seconds_before``: the time already trained by the runs this one resumes)."""

    def __init__(self, total_steps: int, time_budget_s: float, seconds_before: float = 0.0) -> None:
        self.total_steps = total_steps
        self.time_budget_s = time_budget_s
        self.started = time.monotonic() - seconds_before

    def progress(self, steps_done: int) -> float:
        by_steps = steps_done / max(self.total_steps, 1)
        by_time = (time.monotonic() - self.started) / self.time_budget_s if self.time_budget_s else 0.0
        return max(by_steps, by_time)


def autocast(device: torch.device, enabled: bool):
    """bfloat16 autocast on the training device (a no-op context when disabled)."""
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=enabled)


def forward_with_amp_fallback(
    compute: Callable[..., torch.Tensor], args: tuple, device: torch.device, use_amp: bool, log: dict
) -> tuple[torch.Tensor, bool]:
    """``compute(*args)`` under bfloat16 autocast when ``use_amp``; if an autocast kernel is missing on this
    device, again in float32, noting why in ``log`` and returning ``use_amp`` False for the rest of the run."""
    try:
        with autocast(device, use_amp):
            return compute(*args), use_amp
    except RuntimeError as error:
        if not use_amp:
            raise
        log["amp_disabled"] = str(error)[:300]
        return compute(*args), False


def run_log(config: Any, model: MiniXception, device: torch.device, **extra: Any) -> dict:
    """The head of a training run's JSON log: the run's name and config, the architecture, its size, where it ran."""
    return {
        "name": config.name,
        "config": asdict(config),
        "arch": model.config.to_dict(),
        "parameters": count_parameters(model),
        "device": str(device),
        "torch": torch.__version__,
        **extra,
    }


def class_weights(labels: np.ndarray, num_classes: int, power: float) -> torch.Tensor:
    """(N / (C * count)) ** power, rescaled so that the weighted sample count equals N."""
    counts = np.bincount(labels, minlength=num_classes).astype(np.float64)
    weights = (counts.sum() / (num_classes * np.maximum(counts, 1))) ** power
    return torch.tensor(weights / (weights * counts).sum() * counts.sum(), dtype=torch.float32)


class _Progress:
    """tqdm when available (the dev venv pins it), a silent stand-in otherwise (bare GPU hosts)."""

    def __init__(self, total: int, desc: str, enabled: bool) -> None:
        self.bar = None
        if enabled:
            try:
                from tqdm import tqdm

                self.bar = tqdm(total=total, desc=desc, leave=False, dynamic_ncols=True)
            except ImportError:
                self.bar = None

    def update(self, loss: float | None) -> None:
        if self.bar is not None:
            self.bar.update(1)
            if loss is not None:
                self.bar.set_postfix(loss=f"{loss:.3f}")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


@dataclass
class _Run:
    """What a run carries from epoch to epoch (and what ``last.pt`` saves besides the weights)."""

    epoch: int = 0
    best_f1: float = -1.0
    best_epoch: int = 0
    history: list = field(default_factory=list)
    train_seconds: float = 0.0


def fit(
    model: MiniXception,
    objective: Objective,
    settings: LoopSettings,
    watch: Callable[[MiniXception], ClassificationReport],
    checkpoint_dir: Path,
    log: dict,
    log_path: Path,
    device: torch.device,
    checkpoint_meta: dict,
    watch_start: bool = False,
    progress: bool = False,
) -> dict:
    """Train ``model`` on ``objective`` (resuming from ``checkpoint_dir/last.pt`` if there is one), watching
    ``watch(model)`` after every epoch; returns ``log`` (also written to ``log_path`` after every epoch).
    ``checkpoint_meta`` (``target``, ``config``) goes into every checkpoint beside the weights;
    ``watch_start`` records the watched figures before the first step (for a model started from weights)."""
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    trainer = _Trainer(model, objective, settings, device, log)
    last_path, best_path = checkpoint_dir / "last.pt", checkpoint_dir / "best.pt"
    if last_path.exists():
        trainer.resume(last_path)
    elif watch_start:
        log["init_val"] = watch(model).to_dict()
    run, cosine = trainer.run, settings.schedule == "cosine"
    epoch_seconds, finished = 0.0, False
    while run.epoch < settings.epochs and not finished:
        stop = _stop_reason(settings, run, epoch_seconds)
        if stop:
            log["stopped"] = stop
            break
        epoch_start = time.monotonic()
        mean_loss, steps_run, finished = trainer.train_epoch(progress)
        if steps_run == 0:
            break
        report = watch(model)
        if not cosine:
            trainer.scheduler.step(report.weighted_f1)
        run.epoch += 1
        epoch_seconds = time.monotonic() - epoch_start
        run.train_seconds += epoch_seconds
        improved = cosine or report.weighted_f1 > run.best_f1  # a cosine run's "best" is its latest weights
        if improved:
            run.best_f1, run.best_epoch = report.weighted_f1, run.epoch
        lr = trainer.optimizer.param_groups[0]["lr"]
        run.history.append(_history_row(run.epoch, mean_loss, report, lr, epoch_seconds, steps_run))
        trainer.save(checkpoint_meta, best_path if improved else None, last_path)
        print(
            f"{settings.name} epoch {run.epoch:3d} loss {mean_loss:.4f} val wF1 {report.weighted_f1:.4f} "
            f"acc {report.accuracy:.4f} ece {report.ece:.3f} lr {lr:.1e} {epoch_seconds:.1f}s"
            f"{' *' if improved else ''}",
            flush=True,
        )
        _update_log(log, run, report, trainer.use_amp)
        log_path.write_text(json.dumps(log, indent=1))

    if "stopped" not in log:
        log["stopped"] = "cosine schedule complete" if cosine else "all epochs run"
        if run.epoch == 0:
            log["stopped"] = "no step fitted the budget"
    log.update({"epochs_run": run.epoch, "best_epoch": run.best_epoch, "best_val_weighted_f1": run.best_f1})
    log["history"] = run.history
    log_path.write_text(json.dumps(log, indent=1))
    return log


class _Trainer:
    """The optimizer, schedule, batch generator and amp state of one run, and its steps."""

    def __init__(
        self, model: MiniXception, objective: Objective, settings: LoopSettings, device: torch.device, log: dict
    ) -> None:
        self.model, self.objective, self.settings, self.device, self.log = model, objective, settings, device, log
        self.optimizer = torch.optim.Adam(
            model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay, fused=device.type == "cuda"
        )
        self.scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            self.optimizer, mode="max", factor=settings.lr_factor, patience=settings.lr_patience, min_lr=1e-5
        )
        self.generator = torch.Generator(device=device)
        self.generator.manual_seed(settings.seed)
        self.run = _Run()
        self.use_amp = settings.amp and device.type == "cuda"
        self.clock = RunClock(settings.epochs * objective.steps_per_epoch, settings.time_budget_s)

    def resume(self, last_path: Path) -> None:
        saved = torch.load(last_path, map_location=self.device, weights_only=False)
        self.model.load_state_dict(saved["model"])
        self.optimizer.load_state_dict(saved["optimizer"])
        self.scheduler.load_state_dict(saved["scheduler"])
        self.generator.set_state(saved["generator"].cpu())
        if "torch_rng" in saved:  # dropout draws from torch's own generator
            torch.set_rng_state(saved["torch_rng"])
        self.run = _Run(**saved["state"])
        steps = self.settings.epochs * self.objective.steps_per_epoch
        self.clock = RunClock(steps, self.settings.time_budget_s, self.run.train_seconds)

    def train_epoch(self, progress: bool) -> tuple[float, int, bool]:
        """One epoch's steps: (mean loss, steps run, whether the cosine schedule ended during it)."""
        settings, objective, generator = self.settings, self.objective, self.generator
        steps_per_epoch = objective.steps_per_epoch
        self.model.train()
        objective.begin_epoch(generator)
        bar = _Progress(steps_per_epoch, f"{settings.name} epoch {self.run.epoch + 1}", progress)
        total_loss = torch.zeros((), device=self.device)
        steps_run, finished = 0, False
        for step in range(steps_per_epoch):
            if settings.schedule == "cosine":
                run_progress = self.clock.progress(self.run.epoch * steps_per_epoch + step)
                if run_progress >= 1.0:
                    finished = True
                    break
                for group in self.optimizer.param_groups:
                    group["lr"] = cosine_lr(settings.lr, run_progress, settings.warmup_fraction)
            batch = objective.batch(step, generator)
            arguments = (self.model, batch, self.run.epoch, step, generator)
            loss, self.use_amp = forward_with_amp_fallback(
                objective.loss, arguments, self.device, self.use_amp, self.log
            )
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            total_loss += loss.detach().float()
            steps_run += 1
            # .item() waits for the device: read the loss for the bar only every 50 steps.
            bar.update(loss.item() if (progress and step % 50 == 0) else None)
        bar.close()
        return float(total_loss.item() / max(steps_run, 1)), steps_run, finished

    def save(self, meta: dict, best_path: Path | None, last_path: Path) -> None:
        """``best.pt`` (weights) when given, and ``last.pt`` (everything a resumed run needs)."""
        model, run = self.model, self.run
        checkpoint = {"arch": model.config.to_dict(), **meta, "model": model.state_dict(), "epoch": run.epoch}
        if best_path is not None:
            _save_atomically(checkpoint, best_path)
        resume = {
            **checkpoint,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "generator": self.generator.get_state(),
            "torch_rng": torch.get_rng_state(),
            "state": asdict(run),
        }
        _save_atomically(resume, last_path)


def _stop_reason(settings: LoopSettings, run: _Run, epoch_seconds: float) -> str | None:
    """Why a plateau run stops before its next epoch (None: it goes on). A cosine run ends on its schedule."""
    if settings.schedule == "cosine":
        return None
    if settings.time_budget_s and run.train_seconds + epoch_seconds * 1.1 > settings.time_budget_s:
        return f"time budget ({settings.time_budget_s:.0f} s)"
    if run.best_epoch > 0 and run.epoch - run.best_epoch >= settings.early_stop_patience:
        return f"early stop: no val improvement for {settings.early_stop_patience} epochs"
    return None


def _history_row(
    epoch: int, train_loss: float, report: ClassificationReport, lr: float, seconds: float, steps: int
) -> dict:
    return {
        "epoch": epoch,
        "train_loss": round(train_loss, 5),
        "val_weighted_f1": round(report.weighted_f1, 5),
        "val_accuracy": round(report.accuracy, 5),
        "val_ece": round(report.ece, 5),
        "lr": lr,
        "seconds": round(seconds, 2),
        "steps": steps,
    }


def _save_atomically(checkpoint: dict, path: Path) -> None:
    """Written aside and renamed: a run killed mid-write keeps the previous epoch's file."""
    partial = path.with_suffix(".partial")
    torch.save(checkpoint, partial)
    partial.replace(path)


def _update_log(log: dict, run: _Run, report: ClassificationReport, use_amp: bool) -> None:
    log.update(
        {
            "epochs_run": run.epoch,
            "best_epoch": run.best_epoch,
            "best_val_weighted_f1": run.best_f1,
            "final_val_weighted_f1": report.weighted_f1,
            "history": run.history,
            "amp": use_amp,
        }
    )
