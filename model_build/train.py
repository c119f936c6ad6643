"""Train a mini-Xception mood classifier on FER2013 (CPU or GPU), selecting on val 4-mood weighted F1.

Example (the shipped recipe is in MODEL_CARD.md)::

    model_build/.venv/bin/python -m model_build.train --train ../shared/data/fer2013_train.npz \
        --val ../shared/data/fer2013_val.npz --name w2_m4 --target moods4 --width 2 --input-size 48 \
        --export model_build/cache/w2_m4.onnx

Checkpoints (``last.pt`` every epoch, ``best.pt`` on improvement) go to ``--checkpoint-dir``
(default ``model_build/cache/runs/NAME``) and a rerun with the same name resumes (``loop.py``, the
loop ``distill.py`` shares); a JSON log per run goes to ``--log-dir`` (default ``model_build/runs``).
Data and augmentation stay on the training device, so a GPU is not starved by a CPU data loader.

``--schedule cosine`` anneals the learning rate to zero over ``--epochs`` or ``--time-budget-s``,
whichever ends first (progress = the larger of the two fractions), and keeps the final weights as
``best.pt``: nothing is selected on the validation file, which is then only watched. Use it with the
held-out split of FER2013 Training (``model_build/splits.py``) as ``--val``, so fer2013_val stays unseen.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from meaa.labels import EMOTION_TO_MOOD_MATRIX, emotion_labels_to_moods
from model_build.augment import AugmentConfig, PipelineCrops, augment_batch
from model_build.export import export_checkpoint
from model_build.loop import LoopSettings, class_weights, fit, run_log, seed_everything
from model_build.mini_xception import ArchConfig, MiniXception
from model_build.scoring import TARGETS, load_npz, load_pipeline_crops, mood_report, predict_logits, prepare_eval_images

HERE = Path(__file__).resolve().parent


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


def target_labels(emotion_labels: np.ndarray, target: str) -> np.ndarray:
    return emotion_labels if target == "emotions7" else emotion_labels_to_moods(emotion_labels)


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


class Supervised:
    """The objective of a plain run: each epoch every training face once, augmented on the training device,
    class-weighted and label-smoothed cross-entropy (mixup when ``config.mixup_alpha`` > 0)."""

    def __init__(self, config: TrainConfig, device: torch.device) -> None:
        images, emotions = load_npz(config.train, config.limit)
        targets = target_labels(emotions, config.target)
        self.config = config
        self.weights = class_weights(targets, len(TARGETS[config.target]), config.class_weight_power).to(device)
        self.x = torch.from_numpy(images)[:, None].to(device)
        self.y = torch.from_numpy(targets).to(device)
        self.crops: PipelineCrops | None = (
            load_pipeline_crops(config.train, config.limit, device) if config.augment.pipeline_crop_prob > 0 else None
        )
        self.steps_per_epoch = max(1, len(self.x) // config.batch_size)
        self.order = torch.arange(len(self.x), device=device)

    def begin_epoch(self, generator: torch.Generator) -> None:
        self.order = torch.randperm(len(self.x), generator=generator, device=self.x.device)

    def batch(self, step: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        size = self.config.batch_size
        index = self.order[step * size : (step + 1) * size]
        crops = self.crops.take(index) if self.crops is not None else None
        x = augment_batch(self.x[index], self.config.input_size, self.config.augment, generator, crops)
        return x, self.y[index]

    def loss(self, model: MiniXception, batch: tuple, epoch: int, step: int, generator: torch.Generator):
        x, y = batch
        config, weights = self.config, self.weights
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


def train(
    config: TrainConfig, checkpoint_dir: Path, log_dir: Path, device: torch.device, progress: bool = True
) -> dict:
    """Run (or resume) one training run; returns the run log (also written as JSON)."""
    seed_everything(config.seed)
    objective = Supervised(config, device)
    val_images, val_emotions = load_npz(config.val)
    val_x = prepare_eval_images(val_images, config.input_size, device)
    model = build_model(config).to(device)

    def watch(current: MiniXception):
        return mood_report(predict_logits(current, val_x, config.tta_flip), val_emotions, config.target)

    log = run_log(config, model, device, checkpoint=str(checkpoint_dir / "best.pt"))
    return fit(
        model,
        objective,
        LoopSettings.of(config),
        watch,
        checkpoint_dir,
        log,
        log_dir / f"{config.name}.json",
        device,
        {"target": config.target, "config": asdict(config)},
        watch_start=bool(config.init_from),
        progress=progress,
    )


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
        result = export_checkpoint(checkpoint_dir / "best.pt", args.val, args.export, tta_flip=args.export_tta_flip)
        log["export"] = result
        (Path(args.log_dir) / f"{args.name}.json").write_text(json.dumps(log, indent=1))
        print(json.dumps(result, indent=1))
    return log


if __name__ == "__main__":
    main()
