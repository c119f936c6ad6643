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
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from meaa.labels import EMOTIONS
from model_build.augment import to_model_range
from model_build.mini_xception import ArchConfig, MiniXception
from model_build.train import (
    RunClock,
    class_weights,
    cosine_lr,
    forward_with_amp_fallback,
    load_npz,
    mood_report,
    predict_logits,
    prepare_eval_images,
    run_log,
    seed_everything,
)


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


def distill(config: DistillConfig, out_dir: Path, log_dir: Path, device: torch.device) -> dict:
    seed_everything(config.seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    log_dir.mkdir(parents=True, exist_ok=True)
    _, fit_labels = load_npz(config.fit, config.limit)
    val_images, val_emotions = load_npz(config.val)
    targets, _, views = teacher_targets(config.teachers, config.kd_temperature) if config.teachers else (None, None, 0)
    bank = np.load(config.views, mmap_mode="r")
    views = views or bank.shape[0]
    if config.limit_views:
        views = min(views, config.limit_views)
        targets = targets[:views] if targets is not None else None
    if bank.shape[1] != len(fit_labels):
        raise SystemExit(f"{config.views} has {bank.shape[1]} faces per view, {config.fit} has {len(fit_labels)}")
    bank_x = torch.from_numpy(np.array(bank[:views])).to(device)  # uint8 [V, N, 48, 48], read into memory
    bank_y = torch.from_numpy(fit_labels).to(device)
    bank_t = torch.from_numpy(targets).to(device) if targets is not None else None

    jaffe_x = jaffe_y = None
    jaffe_used: list[str] = []
    if config.jaffe and config.jaffe_fraction > 0:
        with np.load(config.jaffe) as data:
            keep = ~np.isin(data["subjects"], list(config.jaffe_exclude))
            jaffe_used = sorted(set(data["subjects"][keep].tolist()))
            jaffe_x = torch.from_numpy(data["views"][keep]).to(device)  # uint8 [J, views, 48, 48]
            jaffe_y = torch.from_numpy(data["labels"][keep].astype(np.int64)).to(device)

    weights = class_weights(fit_labels, len(EMOTIONS), config.class_weight_power).to(device)
    val_x = prepare_eval_images(val_images, config.input_size, device)
    model = MiniXception(ArchConfig(num_classes=len(EMOTIONS), input_size=config.input_size, width=config.width)).to(
        device
    )
    optimizer = torch.optim.Adam(
        model.parameters(), lr=config.lr, weight_decay=config.weight_decay, fused=device.type == "cuda"
    )
    generator = torch.Generator(device=device)
    generator.manual_seed(config.seed)

    fer_count = len(fit_labels)
    share = config.jaffe_fraction / (1 - config.jaffe_fraction)
    jaffe_count = round(share * fer_count) if jaffe_x is not None else 0
    per_epoch = fer_count + jaffe_count
    steps_per_epoch = max(1, per_epoch // config.batch_size)
    clock = RunClock(config.epochs * steps_per_epoch, config.time_budget_s)
    tau = config.kd_temperature
    use_amp = config.amp and device.type == "cuda"  # bfloat16 on a CPU without AMX is slower, not faster
    log = run_log(config, model, device, bank_views=views, jaffe_subjects_in_training=jaffe_used, history=[])
    log_path = log_dir / f"{config.name}.json"
    epoch, finished = 0, False
    while epoch < config.epochs and not finished:
        epoch_start = time.monotonic()
        model.train()
        # Sample ids: FER2013 faces 0..N-1 (each once), then JAFFE draws N.. (photos with replacement).
        fer_ids = torch.randperm(fer_count, generator=generator, device=device)
        jaffe_ids = (
            torch.randint(0, len(jaffe_y), (jaffe_count,), generator=generator, device=device) if jaffe_count else None
        )
        order = torch.randperm(per_epoch, generator=generator, device=device)
        total, steps_run = torch.zeros((), device=device), 0
        for step in range(steps_per_epoch):
            run_progress = clock.progress(epoch * steps_per_epoch + step)
            if run_progress >= 1.0:
                finished = True
                break
            for group in optimizer.param_groups:
                group["lr"] = cosine_lr(config.lr, run_progress, config.warmup_fraction)
            picks = order[step * config.batch_size : (step + 1) * config.batch_size]
            from_fer = picks < fer_count
            fer_rows = fer_ids[picks[from_fer]]
            fer_views = torch.randint(0, views, (len(fer_rows),), generator=generator, device=device)
            pixels = [bank_x[fer_views, fer_rows]]
            labels = [bank_y[fer_rows]]
            if jaffe_ids is not None:
                jaffe_rows = jaffe_ids[picks[~from_fer] - fer_count]
                jaffe_views = torch.randint(0, jaffe_x.shape[1], (len(jaffe_rows),), generator=generator, device=device)
                pixels.append(jaffe_x[jaffe_rows, jaffe_views])
                labels.append(jaffe_y[jaffe_rows])
            x = to_model_range(torch.cat(pixels)[:, None])
            flip = torch.rand(len(x), generator=generator, device=device) < 0.5
            x = torch.where(flip[:, None, None, None], torch.flip(x, dims=[3]), x)
            y = torch.cat(labels)
            n_fer = len(fer_rows)
            logits, use_amp = forward_with_amp_fallback(lambda batch: model(batch).float(), (x,), device, use_amp, log)
            hard = F.cross_entropy(logits, y, weight=weights, label_smoothing=config.label_smoothing, reduction="none")
            per_sample = hard.clone()
            if bank_t is not None and config.kd_alpha > 0 and n_fer:
                teacher = bank_t[fer_views, fer_rows]
                log_student = F.log_softmax(logits[:n_fer] / tau, dim=1)
                kd = (teacher * (torch.log(teacher.clamp_min(1e-8)) - log_student)).sum(dim=1) * tau * tau
                per_sample[:n_fer] = config.kd_alpha * kd + (1 - config.kd_alpha) * hard[:n_fer]
            loss = per_sample.mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.detach()
            steps_run += 1
        if steps_run == 0:
            break
        epoch += 1
        report = mood_report(predict_logits(model, val_x, True), val_emotions, "emotions7")
        seconds = time.monotonic() - epoch_start
        log["history"].append(
            {
                "epoch": epoch,
                "train_loss": round(float(total.item()) / steps_run, 5),
                "val_weighted_f1": round(report.weighted_f1, 5),
                "val_accuracy": round(report.accuracy, 5),
                "val_ece": round(report.ece, 5),
                "lr": optimizer.param_groups[0]["lr"],
                "seconds": round(seconds, 2),
                "steps": steps_run,
            }
        )
        torch.save(
            {
                "arch": model.config.to_dict(),
                "target": "emotions7",
                "model": model.state_dict(),
                "config": asdict(config),
                "epoch": epoch,
            },
            out_dir / "best.pt",
        )
        print(
            f"{config.name} epoch {epoch:3d} loss {log['history'][-1]['train_loss']:.4f} "
            f"holdout wF1 {report.weighted_f1:.4f} acc {report.accuracy:.4f} {seconds:.1f}s",
            flush=True,
        )
        log.update({"epochs_run": epoch, "final_val_weighted_f1": report.weighted_f1, "amp": use_amp})
        log_path.write_text(json.dumps(log, indent=1))
    log["stopped"] = "cosine schedule complete" if finished or epoch >= config.epochs else "no step fitted the budget"
    log_path.write_text(json.dumps(log, indent=1))
    return log


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
    )
    return distill(config, Path(args.out_dir), Path(args.log_dir), device)


if __name__ == "__main__":
    main()
