"""Train a small student from a bank of views, its teachers' answers and the labels (knowledge distillation).

The student sees, each epoch, every FER2013 fit face once as one of its bank views (``bank.py``), mirrored
half the time, plus jaffe_dev's posed faces (``jaffe_views.py``: cut by meaa's detector, with its
jitter) as ``--jaffe-fraction`` of the samples, leaving out the subjects named by ``--jaffe-exclude``
(leave-one-subject-out). Loss per FER2013 face: ``kd_alpha`` * tau^2 * KL(teachers || student) at
temperature tau (the teachers' softmaxes averaged) + (1 - ``kd_alpha``) * the class-weighted,
label-smoothed cross-entropy of the label. JAFFE faces use the label alone: the teachers never saw a
posed face and read posed negatives as neutral, which is the error JAFFE is there to fix.

The learning rate anneals (cosine) to zero over ``--epochs`` or ``--time-budget-s``; the final weights
are ``best.pt``. ``--val`` (the FER2013 Training holdout, ``splits.py``) is only watched.

    python -m model_build.distill --name final --views WORK/views.npy --fit FIT.npz --val HOLDOUT.npz \
        --teachers WORK/teachers/t1,WORK/teachers/fer --jaffe jaffe_views.npz --jaffe-fraction 0.05 \
        --width 2 --epochs 200 --time-budget-s 230
"""

from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from meaa.labels import EMOTIONS
from model_build.augment import to_model_range
from model_build.loop import LoopSettings, class_weights, fit, run_log, seed_everything
from model_build.mini_xception import ArchConfig, MiniXception
from model_build.scoring import load_npz, mood_report, predict_logits, prepare_eval_images


@dataclass
class DistillConfig:
    name: str
    views: str
    fit: str
    val: str
    teachers: tuple[str, ...]
    jaffe: str | None = None
    jaffe_exclude: tuple[str, ...] = ()
    jaffe_fraction: float = 0.05
    kd_alpha: float = 0.8
    kd_temperature: float = 2.0
    width: float = 2.0
    input_size: int = 48
    epochs: int = 200
    batch_size: int = 256
    lr: float = 1.5e-3
    weight_decay: float = 1e-4
    label_smoothing: float = 0.1
    class_weight_power: float = 0.5
    warmup_fraction: float = 0.02
    time_budget_s: float = 0.0
    amp: bool = False
    seed: int = 0
    limit_views: int = 0  # use only the first N bank views (smoke runs); 0 = all the teachers scored
    limit: int = 0  # the seeded subset of train.py --limit (the bank must be drawn with the same limit)
    init_from: str | None = None  # start from these weights (a checkpoint of the same architecture)


def teacher_targets(prefixes: tuple[str, ...], temperature: float) -> tuple[np.ndarray, np.ndarray | None, int]:
    """Mean of the teachers' softmax(logits / tau): FER bank [V, N, 7] (the views every teacher scored)
    and JAFFE views [photos, views, 7] (None if a teacher has none)."""
    fer = [np.load(prefix + ".fer.npy", mmap_mode="r") for prefix in prefixes]
    views = min(bank.shape[0] for bank in fer)
    if views == 0:
        raise SystemExit("a teacher scored no view of the bank")

    def mean_softmax(arrays: list[np.ndarray]) -> np.ndarray:
        total = None
        for logits in arrays:
            z = np.asarray(logits, np.float32) / temperature
            z -= z.max(axis=-1, keepdims=True)
            p = np.exp(z)
            p /= p.sum(axis=-1, keepdims=True)
            total = p if total is None else total + p
        return (total / len(arrays)).astype(np.float32)

    fer_targets = mean_softmax([bank[:views] for bank in fer])
    jaffe_paths = [Path(prefix + ".jaffe.npy") for prefix in prefixes]
    jaffe_targets = mean_softmax([np.load(p) for p in jaffe_paths]) if all(p.exists() for p in jaffe_paths) else None
    return fer_targets, jaffe_targets, views


class Distillation:
    """The objective of a student: each epoch every FER2013 fit face once, as a random view of the bank (mirrored
    half the time), plus JAFFE draws; loss per FER2013 face ``kd_alpha`` * tau^2 * KL(teachers || student) +
    (1 - ``kd_alpha``) * cross-entropy of the label, per JAFFE face the cross-entropy alone."""

    def __init__(self, config: DistillConfig, device: torch.device) -> None:
        _, fit_labels = load_npz(config.fit, config.limit)
        targets, _, views = (
            teacher_targets(config.teachers, config.kd_temperature) if config.teachers else (None, None, 0)
        )
        bank = np.load(config.views, mmap_mode="r")
        views = views or bank.shape[0]
        if config.limit_views:
            views = min(views, config.limit_views)
            targets = targets[:views] if targets is not None else None
        if bank.shape[1] != len(fit_labels):
            raise SystemExit(f"{config.views} has {bank.shape[1]} faces per view, {config.fit} has {len(fit_labels)}")
        self.config, self.views = config, views
        self.bank_x = torch.from_numpy(np.array(bank[:views])).to(device)  # uint8 [V, N, 48, 48], in memory
        self.bank_y = torch.from_numpy(fit_labels).to(device)
        self.bank_t = torch.from_numpy(targets).to(device) if targets is not None else None

        self.jaffe_x = self.jaffe_y = None
        self.jaffe_used: list[str] = []
        if config.jaffe and config.jaffe_fraction > 0:
            with np.load(config.jaffe) as data:
                keep = ~np.isin(data["subjects"], list(config.jaffe_exclude))
                self.jaffe_used = sorted(set(data["subjects"][keep].tolist()))
                self.jaffe_x = torch.from_numpy(data["views"][keep]).to(device)  # uint8 [J, views, 48, 48]
                self.jaffe_y = torch.from_numpy(data["labels"][keep].astype(np.int64)).to(device)

        self.weights = class_weights(fit_labels, len(EMOTIONS), config.class_weight_power).to(device)
        self.fer_count = len(fit_labels)
        share = config.jaffe_fraction / (1 - config.jaffe_fraction)
        self.jaffe_count = round(share * self.fer_count) if self.jaffe_x is not None else 0
        self.per_epoch = self.fer_count + self.jaffe_count
        self.steps_per_epoch = max(1, self.per_epoch // config.batch_size)
        self.device = device
        self.fer_ids = self.jaffe_ids = self.order = None

    def begin_epoch(self, generator: torch.Generator) -> None:
        # Sample ids: FER2013 faces 0..N-1 (each once), then JAFFE draws N.. (photos with replacement).
        device = self.device
        self.fer_ids = torch.randperm(self.fer_count, generator=generator, device=device)
        self.jaffe_ids = (
            torch.randint(0, len(self.jaffe_y), (self.jaffe_count,), generator=generator, device=device)
            if self.jaffe_count
            else None
        )
        self.order = torch.randperm(self.per_epoch, generator=generator, device=device)

    def batch(self, step: int, generator: torch.Generator) -> tuple:
        size, device = self.config.batch_size, self.device
        picks = self.order[step * size : (step + 1) * size]
        from_fer = picks < self.fer_count
        fer_rows = self.fer_ids[picks[from_fer]]
        fer_views = torch.randint(0, self.views, (len(fer_rows),), generator=generator, device=device)
        pixels = [self.bank_x[fer_views, fer_rows]]
        labels = [self.bank_y[fer_rows]]
        if self.jaffe_ids is not None:
            jaffe_rows = self.jaffe_ids[picks[~from_fer] - self.fer_count]
            jaffe_views = torch.randint(
                0, self.jaffe_x.shape[1], (len(jaffe_rows),), generator=generator, device=device
            )
            pixels.append(self.jaffe_x[jaffe_rows, jaffe_views])
            labels.append(self.jaffe_y[jaffe_rows])
        x = to_model_range(torch.cat(pixels)[:, None])
        flip = torch.rand(len(x), generator=generator, device=device) < 0.5
        x = torch.where(flip[:, None, None, None], torch.flip(x, dims=[3]), x)
        teacher = self.bank_t[fer_views, fer_rows] if self.bank_t is not None else None
        return x, torch.cat(labels), teacher

    def loss(self, model: MiniXception, batch: tuple, epoch: int, step: int, generator: torch.Generator):
        x, y, teacher = batch
        config, tau = self.config, self.config.kd_temperature
        logits = model(x).float()
        hard = F.cross_entropy(logits, y, weight=self.weights, label_smoothing=config.label_smoothing, reduction="none")
        per_sample = hard.clone()
        n_fer = len(teacher) if teacher is not None else 0
        if config.kd_alpha > 0 and n_fer:
            log_student = F.log_softmax(logits[:n_fer] / tau, dim=1)
            kd = (teacher * (torch.log(teacher.clamp_min(1e-8)) - log_student)).sum(dim=1) * tau * tau
            per_sample[:n_fer] = config.kd_alpha * kd + (1 - config.kd_alpha) * hard[:n_fer]
        return per_sample.mean()


def distill(config: DistillConfig, out_dir: Path, log_dir: Path, device: torch.device) -> dict:
    """Run (or resume, from ``out_dir/last.pt``) one student; returns its log (also written as JSON)."""
    seed_everything(config.seed)
    objective = Distillation(config, device)
    val_images, val_emotions = load_npz(config.val)
    val_x = prepare_eval_images(val_images, config.input_size, device)
    model = MiniXception(ArchConfig(num_classes=len(EMOTIONS), input_size=config.input_size, width=config.width))
    if config.init_from:
        model.load_state_dict(torch.load(config.init_from, map_location="cpu", weights_only=False)["model"])
    model = model.to(device)

    def watch(current: MiniXception):
        return mood_report(predict_logits(current, val_x, True), val_emotions, "emotions7")

    log = run_log(
        config,
        model,
        device,
        bank_views=objective.views,
        jaffe_subjects_in_training=objective.jaffe_used,
        history=[],
    )
    return fit(
        model,
        objective,
        LoopSettings.of(config, schedule="cosine"),
        watch,
        out_dir,
        log,
        log_dir / f"{config.name}.json",
        device,
        {"target": "emotions7", "config": asdict(config)},
        watch_start=bool(config.init_from),
    )


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--name", required=True)
    parser.add_argument("--views", required=True, help="bank.py views .npy")
    parser.add_argument("--fit", required=True, help="the FER2013 fit npz the bank was drawn from (labels)")
    parser.add_argument("--val", required=True, help="held-out npz, watched only")
    parser.add_argument("--teachers", default="", help="comma-separated bank.py logits prefixes (empty: labels only)")
    parser.add_argument("--jaffe", help="jaffe_views.npz")
    parser.add_argument("--jaffe-exclude", default="", help="comma-separated subjects left out (e.g. KA)")
    parser.add_argument("--jaffe-fraction", type=float, default=0.05)
    parser.add_argument("--kd-alpha", type=float, default=0.8)
    parser.add_argument("--kd-temperature", type=float, default=2.0)
    parser.add_argument("--width", type=float, default=2.0)
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--lr", type=float, default=1.5e-3)
    parser.add_argument("--time-budget-s", type=float, default=0.0)
    parser.add_argument("--amp", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit-views", type=int, default=0, help="use only the first N bank views (smoke runs)")
    parser.add_argument("--limit", type=int, default=0, help="the seeded fit subset the bank was drawn with")
    parser.add_argument("--init-from", help="start from this checkpoint's weights (same width and input size)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--out-dir", required=True, help="best.pt goes here")
    parser.add_argument("--log-dir", required=True)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    config = DistillConfig(
        name=args.name,
        views=args.views,
        fit=args.fit,
        val=args.val,
        teachers=tuple(t for t in args.teachers.split(",") if t),
        jaffe=args.jaffe,
        jaffe_exclude=tuple(s for s in args.jaffe_exclude.split(",") if s),
        jaffe_fraction=args.jaffe_fraction,
        kd_alpha=args.kd_alpha,
        kd_temperature=args.kd_temperature,
        width=args.width,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        time_budget_s=args.time_budget_s,
        amp=args.amp,
        seed=args.seed,
        limit_views=args.limit_views,
        limit=args.limit,
        init_from=args.init_from,
    )
    return distill(config, Path(args.out_dir), Path(args.log_dir), device)


if __name__ == "__main__":
    main()
