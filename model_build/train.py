"""Train a mini-Xception mood classifier on FER2013 (CPU or GPU), selecting on val 4-mood weighted F1.

Example (the shipped recipe is in MODEL_CARD.md)::

    model_build/.venv/bin/python -m model_build.train --train ../shared/data/fer2013_train.npz \
        --val ../shared/data/fer2013_val.npz --name w2_m4 --target moods4 --width 2 --input-size 48 \
        --export model_build/cache/w2_m4.onnx

Checkpoints (``last.pt`` every epoch, ``best.pt`` on improvement) go to ``--checkpoint-dir``
(default ``model_build/cache/runs/NAME``) and a rerun with the same name resumes; a JSON log per run
goes to ``--log-dir`` (default ``model_build/runs``). Data and augmentation stay on the training
device, so a GPU is not starved by a CPU data loader.

``--schedule cosine`` anneals the learning rate to zero over ``--epochs`` or ``--time-budget-s``,
whichever ends first (progress = the larger of the two fractions), and keeps the final weights as
``best.pt``: nothing is selected on the validation file, which is then only watched. Use it with the
held-out split of FER2013 Training (``model_build/splits.py``) as ``--val``, so fer2013_val stays unseen.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from meaa.labels import EMOTION_TO_MOOD_MATRIX, EMOTIONS, MOODS, emotion_labels_to_moods, emotions_to_moods
from model_build.augment import AugmentConfig, PipelineCrops, augment_batch, resize_for_model, to_model_range
from model_build.metrics import classification_report, softmax
from model_build.mini_xception import ArchConfig, MiniXception, count_parameters
from model_build.splits import limited_indices

HERE = Path(__file__).resolve().parent

TARGETS = {"moods4": MOODS, "emotions7": EMOTIONS}


@dataclass
class TrainConfig:
    name: str
    train: str
    val: str
    target: str = "moods4"
    input_size: int = 48
    width: float = 1.0
    depth: int = 2
    dropout: float = 0.0
    epochs: int = 100
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-4
    label_smoothing: float = 0.1
    mixup_alpha: float = 0.0
    cutout_prob: float = 0.0
    class_weight_power: float = 0.5  # weights = (N / (C * count)) ** power; 0 = unweighted
    lr_patience: int = 5
    lr_factor: float = 0.5
    early_stop_patience: int = 15
    tta_flip: bool = True
    init_from: str | None = None
    seed: int = 0
    limit: int = 0  # use only the first N training images (tests, smoke runs)
    time_budget_s: float = 0.0  # stop before an epoch that would overrun (0 = no budget)
    schedule: str = "plateau"  # "plateau": ReduceLROnPlateau + early stop on val; "cosine": no selection
    warmup_fraction: float = 0.02  # cosine: linear warm-up over this share of the run
    amp: bool = False  # bfloat16 autocast (CUDA); falls back to float32 if the first step fails
    augment: AugmentConfig = field(default_factory=AugmentConfig)


def to_moods_fn(target: str):
    """Class probabilities -> mood probabilities for the given target."""
    return emotions_to_moods if target == "emotions7" else (lambda p: np.asarray(p, dtype=np.float32))


def load_npz(path: str, limit: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images [N,H,W] and FER2013 emotion labels [N]."""
    with np.load(path) as data:
        images, labels = data["images"], data["labels"].astype(np.int64)
    if limit:  # a seeded random subset: the npz files are sorted by label
        keep = limited_indices(len(labels), limit)
        images, labels = images[keep], labels[keep]
    return np.ascontiguousarray(images, dtype=np.uint8), labels


def load_pipeline_crops(path: str, limit: int, device: torch.device) -> PipelineCrops | None:
    """The detector geometry stored beside the images by ``model_build.splits --geometry`` (None if absent)."""
    with np.load(path) as data:
        if "crop_found" not in data.files:
            return None
        found, scale, center = data["crop_found"], data["crop_scale"], data["crop_center"]
    if limit:  # the same seeded subset as load_npz
        keep = limited_indices(len(found), limit)
        found, scale, center = found[keep], scale[keep], center[keep]
    return PipelineCrops(
        torch.from_numpy(found.astype(bool)).to(device),
        torch.from_numpy(scale.astype(np.float32)).to(device),
        torch.from_numpy(center.astype(np.float32)).to(device),
    )


def cosine_lr(base_lr: float, progress: float, warmup_fraction: float) -> float:
    """Linear warm-up, then half a cosine from ``base_lr`` down to 0 at progress 1."""
    if progress < warmup_fraction:
        return base_lr * max(progress, 1e-3) / warmup_fraction
    tail = (progress - warmup_fraction) / max(1.0 - warmup_fraction, 1e-9)
    return base_lr * 0.5 * (1.0 + np.cos(np.pi * min(tail, 1.0)))


class RunClock:
    """Progress of a cosine run: the larger of steps done over planned steps and time over budget."""

    def __init__(self, total_steps: int, time_budget_s: float) -> None:
        self.total_steps = total_steps
        self.time_budget_s = time_budget_s
        self.started = time.monotonic()

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


def target_labels(emotion_labels: np.ndarray, target: str) -> np.ndarray:
    return emotion_labels if target == "emotions7" else emotion_labels_to_moods(emotion_labels)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def build_model(config: TrainConfig) -> MiniXception:
    arch = ArchConfig(
        num_classes=len(TARGETS[config.target]),
        input_size=config.input_size,
        width=config.width,
        depth=config.depth,
        dropout=config.dropout,
    )
    model = MiniXception(arch)
    if config.init_from:
        init = torch.load(config.init_from, map_location="cpu", weights_only=False)
        state = init["model"]
        if config.target == "moods4" and init.get("target") == "emotions7":
            # Start the 4-mood head from the 7-emotion one: a mood's logit is the mean of its emotions'.
            weight, bias = state["classifier.weight"], state["classifier.bias"]
            to_mood = torch.from_numpy(EMOTION_TO_MOOD_MATRIX)
            share = to_mood / to_mood.sum(dim=0, keepdim=True)
            state = dict(state)
            state["classifier.weight"] = torch.einsum("em,eihw->mihw", share, weight)
            state["classifier.bias"] = share.T @ bias
        model.load_state_dict(state)
    return model


@torch.no_grad()
def predict_logits(model: MiniXception, images: torch.Tensor, tta_flip: bool, batch_size: int = 1024) -> np.ndarray:
    """Logits for model-range images [N,1,S,S]; with ``tta_flip`` the mean of image and mirror."""
    model.eval()
    outputs = []
    for start in range(0, len(images), batch_size):
        batch = images[start : start + batch_size]
        logits = model(batch)
        if tta_flip:
            logits = (logits + model(torch.flip(batch, dims=[3]))) / 2
        outputs.append(logits.float().cpu())
    return torch.cat(outputs).numpy()


def mood_report(logits: np.ndarray, emotion_labels: np.ndarray, target: str, temperature: float = 1.0):
    moods = to_moods_fn(target)(softmax(logits, temperature))
    return classification_report(moods, emotion_labels_to_moods(emotion_labels), MOODS)


def prepare_eval_images(images: np.ndarray, size: int, device: torch.device) -> torch.Tensor:
    tensor = torch.from_numpy(images)[:, None].to(device)
    return resize_for_model(to_model_range(tensor), size)


def class_weights(labels: np.ndarray, num_classes: int, power: float) -> torch.Tensor:
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


def train(
    config: TrainConfig, checkpoint_dir: Path, log_dir: Path, device: torch.device, progress: bool = True
) -> dict:
    """Run (or resume) one training run; returns the run log (also written as JSON)."""
    seed_everything(config.seed)
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{config.name}.json"

    train_images, train_emotions = load_npz(config.train, config.limit)
    val_images, val_emotions = load_npz(config.val)
    classes = TARGETS[config.target]
    train_targets = target_labels(train_emotions, config.target)
    weights = class_weights(train_targets, len(classes), config.class_weight_power).to(device)

    train_x = torch.from_numpy(train_images)[:, None].to(device)
    train_y = torch.from_numpy(train_targets).to(device)
    val_x = prepare_eval_images(val_images, config.input_size, device)

    model = build_model(config).to(device)
    optimizer = torch.optim.Adam(
        model.parameters(), lr=config.lr, weight_decay=config.weight_decay, fused=device.type == "cuda"
    )
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, mode="max", factor=config.lr_factor, patience=config.lr_patience, min_lr=1e-5
    )
    generator = torch.Generator(device=device)
    generator.manual_seed(config.seed)
    state = {"epoch": 0, "best_f1": -1.0, "best_epoch": 0, "history": []}

    last_path, best_path = checkpoint_dir / "last.pt", checkpoint_dir / "best.pt"
    if last_path.exists():
        saved = torch.load(last_path, map_location=device, weights_only=False)
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
        generator.set_state(saved["generator"].cpu())
        state = saved["state"]

    log = run_log(config, model, device, checkpoint=str(best_path))
    if config.init_from and state["epoch"] == 0:
        start_report = mood_report(predict_logits(model, val_x, config.tta_flip), val_emotions, config.target)
        log["init_val"] = start_report.to_dict()

    started = time.monotonic()
    epoch_seconds = 0.0
    steps_per_epoch = max(1, len(train_x) // config.batch_size)
    cosine = config.schedule == "cosine"
    clock = RunClock(config.epochs * steps_per_epoch, config.time_budget_s)
    crops = load_pipeline_crops(config.train, config.limit, device) if config.augment.pipeline_crop_prob > 0 else None
    use_amp = config.amp and device.type == "cuda"  # bfloat16 on a CPU without AMX is slower, not faster
    finished = False
    while state["epoch"] < config.epochs and not finished:
        elapsed = time.monotonic() - started
        if not cosine and config.time_budget_s and elapsed + epoch_seconds * 1.1 > config.time_budget_s:
            log["stopped"] = f"time budget ({config.time_budget_s:.0f} s)"
            break
        if (
            not cosine
            and state["epoch"] - state["best_epoch"] >= config.early_stop_patience
            and state["best_epoch"] > 0
        ):
            log["stopped"] = f"early stop: no val improvement for {config.early_stop_patience} epochs"
            break
        epoch_start = time.monotonic()
        model.train()
        order = torch.randperm(len(train_x), generator=generator, device=device)
        bar = _Progress(steps_per_epoch, f"{config.name} epoch {state['epoch'] + 1}", progress)
        total_loss = torch.zeros((), device=device)
        steps_run = 0
        for step in range(steps_per_epoch):
            if cosine:
                run_progress = clock.progress(state["epoch"] * steps_per_epoch + step)
                if run_progress >= 1.0:
                    finished = True
                    log["stopped"] = "cosine schedule complete (steps or time budget)"
                    break
                for group in optimizer.param_groups:
                    group["lr"] = cosine_lr(config.lr, run_progress, config.warmup_fraction)
            index = order[step * config.batch_size : (step + 1) * config.batch_size]
            x = augment_batch(
                train_x[index],
                config.input_size,
                config.augment,
                generator,
                crops.take(index) if crops is not None else None,
            )
            y = train_y[index]
            batch = (model, x, y, weights, config, state["epoch"], step, generator)
            loss, use_amp = forward_with_amp_fallback(_batch_loss, batch, device, use_amp, log)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total_loss += loss.detach().float()
            steps_run += 1
            # .item() waits for the device: read the loss for the bar only every 50 steps.
            bar.update(loss.item() if (progress and step % 50 == 0) else None)
        bar.close()
        if steps_run == 0:
            break
        train_loss = float(total_loss.item() / steps_run)

        report = mood_report(predict_logits(model, val_x, config.tta_flip), val_emotions, config.target)
        if not cosine:
            scheduler.step(report.weighted_f1)
        state["epoch"] += 1
        epoch_seconds = time.monotonic() - epoch_start
        # A cosine run selects nothing: its "best" is simply its latest weights.
        improved = cosine or report.weighted_f1 > state["best_f1"]
        if improved:
            state["best_f1"], state["best_epoch"] = report.weighted_f1, state["epoch"]
        state["history"].append(
            {
                "epoch": state["epoch"],
                "train_loss": round(train_loss, 5),
                "val_weighted_f1": round(report.weighted_f1, 5),
                "val_accuracy": round(report.accuracy, 5),
                "val_ece": round(report.ece, 5),
                "lr": optimizer.param_groups[0]["lr"],
                "seconds": round(epoch_seconds, 2),
                "steps": steps_run,
            }
        )
        checkpoint = {
            "arch": model.config.to_dict(),
            "target": config.target,
            "model": model.state_dict(),
            "config": asdict(config),
            "epoch": state["epoch"],
        }
        if improved:
            torch.save(checkpoint, best_path)
        if not cosine:  # a cosine run is not resumable (its clock is wall time): no optimizer state to keep
            torch.save(
                {
                    **checkpoint,
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "generator": generator.get_state(),
                    "state": state,
                },
                last_path,
            )
        line = (
            f"{config.name} epoch {state['epoch']:3d} loss {train_loss:.4f} val wF1 {report.weighted_f1:.4f} "
            f"acc {report.accuracy:.4f} ece {report.ece:.3f} lr {optimizer.param_groups[0]['lr']:.1e} "
            f"{epoch_seconds:.1f}s{' *' if improved else ''}"
        )
        print(line, flush=True)
        log.update(
            {
                "epochs_run": state["epoch"],
                "best_epoch": state["best_epoch"],
                "best_val_weighted_f1": state["best_f1"],
                "history": state["history"],
                "amp": use_amp,
            }
        )
        log_path.write_text(json.dumps(log, indent=1))

    log.update(
        {
            "epochs_run": state["epoch"],
            "best_epoch": state["best_epoch"],
            "best_val_weighted_f1": state["best_f1"],
            "history": state["history"],
        }
    )
    log_path.write_text(json.dumps(log, indent=1))
    return log


def _batch_loss(
    model: MiniXception,
    x: torch.Tensor,
    y: torch.Tensor,
    weights: torch.Tensor,
    config: TrainConfig,
    epoch: int,
    step: int,
    generator: torch.Generator,
) -> torch.Tensor:
    if config.mixup_alpha > 0:
        # Seeded by (seed, epoch, step) so that a resumed run draws the same mixing weights.
        lam = float(np.random.default_rng([config.seed, epoch, step]).beta(config.mixup_alpha, config.mixup_alpha))
        perm = torch.randperm(len(x), generator=generator, device=x.device)
        logits = model(lam * x + (1 - lam) * x[perm]).float()
        return lam * F.cross_entropy(logits, y, weight=weights, label_smoothing=config.label_smoothing) + (
            1 - lam
        ) * F.cross_entropy(logits, y[perm], weight=weights, label_smoothing=config.label_smoothing)
    logits = model(x).float()
    return F.cross_entropy(logits, y, weight=weights, label_smoothing=config.label_smoothing)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", required=True, help="FER2013-style npz (images uint8 [N,H,W], labels)")
    parser.add_argument("--val", required=True, help="validation npz: selection, early stopping, temperature")
    parser.add_argument("--name", required=True, help="run name: checkpoint folder and log file name")
    parser.add_argument("--target", choices=sorted(TARGETS), default="moods4")
    parser.add_argument("--input-size", type=int, choices=(48, 64), default=48)
    parser.add_argument("--width", type=float, default=1.0)
    parser.add_argument("--depth", type=int, default=2)
    parser.add_argument("--dropout", type=float, default=0.0)
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--weight-decay", type=float, default=1e-4)
    parser.add_argument("--label-smoothing", type=float, default=0.1)
    parser.add_argument("--mixup-alpha", type=float, default=0.0)
    parser.add_argument("--cutout-prob", type=float, default=0.0)
    parser.add_argument("--class-weight-power", type=float, default=0.5)
    parser.add_argument("--lr-patience", type=int, default=5)
    parser.add_argument("--early-stop-patience", type=int, default=15)
    parser.add_argument("--no-tta-flip", action="store_true", help="validate without flip averaging")
    parser.add_argument("--init-from", help="checkpoint .pt to fine-tune (mini_xception.py converts fer's hdf5)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=int, default=0)
    parser.add_argument("--time-budget-s", type=float, default=0.0)
    parser.add_argument("--schedule", choices=("plateau", "cosine"), default="plateau")
    parser.add_argument("--warmup-fraction", type=float, default=0.02)
    parser.add_argument("--amp", action="store_true", help="bfloat16 autocast (falls back to float32)")
    parser.add_argument(
        "--pipeline-crop-prob",
        type=float,
        default=0.0,
        help="share of faces cut at meaa's detector square (needs crop_* arrays in --train)",
    )
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")
    parser.add_argument("--checkpoint-dir", help="default model_build/cache/runs/NAME")
    parser.add_argument("--log-dir", default=str(HERE / "runs"))
    parser.add_argument("--export", help="after training, export best.pt to this ONNX path (export.py)")
    parser.add_argument("--export-tta-flip", action="store_true", help="fold flip averaging into the ONNX graph")
    parser.add_argument("--no-progress", action="store_true")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    augment = AugmentConfig(cutout_prob=args.cutout_prob, pipeline_crop_prob=args.pipeline_crop_prob)
    config = TrainConfig(
        name=args.name,
        train=args.train,
        val=args.val,
        target=args.target,
        input_size=args.input_size,
        width=args.width,
        depth=args.depth,
        dropout=args.dropout,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        weight_decay=args.weight_decay,
        label_smoothing=args.label_smoothing,
        mixup_alpha=args.mixup_alpha,
        cutout_prob=args.cutout_prob,
        class_weight_power=args.class_weight_power,
        lr_patience=args.lr_patience,
        early_stop_patience=args.early_stop_patience,
        tta_flip=not args.no_tta_flip,
        init_from=args.init_from,
        seed=args.seed,
        limit=args.limit,
        time_budget_s=args.time_budget_s,
        augment=augment,
        schedule=args.schedule,
        warmup_fraction=args.warmup_fraction,
        amp=args.amp,
    )
    checkpoint_dir = Path(args.checkpoint_dir or HERE / "cache" / "runs" / args.name)
    log = train(config, checkpoint_dir, Path(args.log_dir), device, progress=not args.no_progress)
    if args.export:
        from model_build.export import export_checkpoint

        result = export_checkpoint(checkpoint_dir / "best.pt", args.val, args.export, tta_flip=args.export_tta_flip)
        log["export"] = result
        (Path(args.log_dir) / f"{args.name}.json").write_text(json.dumps(log, indent=1))
        print(json.dumps(result, indent=1))
    return log


if __name__ == "__main__":
    main()
