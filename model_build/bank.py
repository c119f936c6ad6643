"""A bank of augmented training views and the teachers' logits on them, for distillation (distill.py).

Why a bank: a student learns from its teachers' answers on the *same* augmented faces it sees. Running
every teacher inside every student's training step would multiply the GPU work by the number of
teachers; instead the views are drawn once (``views``: view 0 is the face itself, the others
``augment.augment_batch`` with the service-like crops of ``geometry.py``), each teacher scores them once
(``logits``), and all students read the stored answers.

    python -m model_build.bank views --train FIT.npz --out WORK/views.npy --views 12
    python -m model_build.bank logits --checkpoint ck/t1/best.pt --views WORK/views.npy \
        --jaffe jaffe_views.npz --val HOLDOUT.npz --out WORK/teachers/t1

``logits`` writes ``NAME.fer.npy`` (float16 [V, N, 7], view-major: with ``--budget-s`` it stops after the
last whole view that fits), ``NAME.jaffe.npy`` ([photos, views, 7]) and ``NAME.val.npy`` (the ``--val``
faces, for the log). Everything runs on the CPU too (``--device cpu``), slowly.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from model_build.augment import AugmentConfig, augment_batch, resize_for_model, to_model_range
from model_build.scoring import load_checkpoint, load_npz, load_pipeline_crops, mood_report

VIEW_SIZE = 48


def pick_device(name: str) -> torch.device:
    return torch.device(("cuda" if torch.cuda.is_available() else "cpu") if name == "auto" else name)


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """Model range [-1, 1] -> uint8 pixels (the bank stores pixels, like every other image here)."""
    return ((x + 1.0) * 127.5).round().clamp(0, 255).to(torch.uint8)


@torch.no_grad()
def make_views(
    train_npz: str,
    views: int,
    pipeline_crop_prob: float,
    seed: int,
    device: torch.device,
    limit: int = 0,
    chunk: int = 4096,
) -> np.ndarray:
    images, _ = load_npz(train_npz, limit)
    crops = load_pipeline_crops(train_npz, limit, device)
    config = AugmentConfig(pipeline_crop_prob=pipeline_crop_prob)
    generator = torch.Generator(device=device)
    generator.manual_seed(seed)
    source = torch.from_numpy(images)[:, None].to(device)
    out = np.empty((views, len(images), VIEW_SIZE, VIEW_SIZE), np.uint8)
    out[0] = (
        images
        if images.shape[1] == VIEW_SIZE
        else to_uint8(resize_for_model(to_model_range(source), VIEW_SIZE))[:, 0].cpu().numpy()
    )
    for view in range(1, views):
        for start in range(0, len(images), chunk):
            index = torch.arange(start, min(start + chunk, len(images)), device=device)
            batch = augment_batch(
                source[index], VIEW_SIZE, config, generator, crops.take(index) if crops is not None else None
            )
            out[view, start : start + len(index)] = to_uint8(batch)[:, 0].cpu().numpy()
    return out


def default_batch(device: torch.device) -> int:
    """Faces per forward pass. On a CPU a 2048-face batch's activations overflow the caches: batch 64 takes 0.48x
    the time of batch 2048 for a width-2 teacher at 2 threads, 0.55x at 1 (``python -m model_build.bank time``)."""
    return 64 if device.type == "cpu" else 2048


@torch.no_grad()
def teacher_logits(
    model: torch.nn.Module, pixels: torch.Tensor, size: int, batch_size: int | None = None
) -> torch.Tensor:
    """Logits [N, C] of uint8 faces [N, 48, 48] on the model's device, resized to its input side."""
    batch_size = batch_size or default_batch(pixels.device)
    outputs = []
    for start in range(0, len(pixels), batch_size):
        x = resize_for_model(to_model_range(pixels[start : start + batch_size, None]), size)
        outputs.append(model(x).float())
    return torch.cat(outputs)


def score_bank(
    checkpoint: str,
    views_path: str,
    jaffe_npz: str | None,
    val_npz: str | None,
    out_prefix: str,
    device: torch.device,
    budget_s: float,
) -> dict:
    started = time.monotonic()
    model, target = load_checkpoint(checkpoint)
    if target != "emotions7":
        raise SystemExit(f"{checkpoint}: teachers need the 7-emotion head, not {target}")
    model = model.to(device).eval()
    size = model.config.input_size
    Path(out_prefix).parent.mkdir(parents=True, exist_ok=True)
    summary: dict = {"checkpoint": checkpoint, "input_size": size}
    if val_npz:
        images, emotions = load_npz(val_npz)
        logits = teacher_logits(model, torch.from_numpy(images).to(device), size).cpu().numpy()
        np.save(out_prefix + ".val.npy", logits.astype(np.float16))
        summary["val_weighted_f1"] = mood_report(logits, emotions, target).weighted_f1
    if jaffe_npz:
        with np.load(jaffe_npz) as data:
            jaffe = data["views"]
        flat = torch.from_numpy(jaffe.reshape(-1, VIEW_SIZE, VIEW_SIZE)).to(device)
        np.save(
            out_prefix + ".jaffe.npy",
            teacher_logits(model, flat, size).cpu().numpy().reshape(*jaffe.shape[:2], -1).astype(np.float16),
        )
    bank = np.load(views_path, mmap_mode="r")
    done = []
    view_seconds = 0.0
    parts = Path(out_prefix + ".fer.parts")  # one file per scored view: a rerun scores only the missing ones
    parts.mkdir(parents=True, exist_ok=True)
    for view in range(bank.shape[0]):
        part = parts / f"view_{view:03d}.npy"
        if part.exists():
            done.append(np.load(part))
            continue
        # The first view is always scored: a teacher that scores nothing would drop out of every student.
        if done and budget_s and time.monotonic() - started + view_seconds * 1.2 > budget_s:
            break
        mark = time.monotonic()
        pixels = torch.from_numpy(np.array(bank[view])).to(device)  # np.array: a writable copy of the mapped view
        done.append(teacher_logits(model, pixels, size).cpu().numpy().astype(np.float16))
        np.save(part, done[-1])
        view_seconds = time.monotonic() - mark
    np.save(
        out_prefix + ".fer.npy",
        np.stack(done).astype(np.float16) if done else np.zeros((0, bank.shape[1], 7), np.float16),
    )
    summary.update(
        {
            "views_scored": len(done),
            "views_in_bank": int(bank.shape[0]),
            "seconds": round(time.monotonic() - started, 1),
        }
    )
    Path(out_prefix + ".json").write_text(json.dumps(summary, indent=1))
    return summary


@torch.no_grad()
def time_batches(checkpoint: str, views_path: str, faces: int, device: torch.device) -> dict:
    """Wall seconds per face of ``teacher_logits`` on the bank's first faces, at each batch size (one warm-up)."""
    model = load_checkpoint(checkpoint)[0].to(device).eval()
    pixels = torch.from_numpy(np.array(np.load(views_path, mmap_mode="r")[0, :faces])).to(device)
    teacher_logits(model, pixels[:64], model.config.input_size)
    timings = {}
    for batch in (2048, 256, 64):
        started = time.perf_counter()
        teacher_logits(model, pixels, model.config.input_size, batch)
        timings[batch] = (time.perf_counter() - started) / len(pixels)
        ratio = timings[batch] / timings[2048]
        print(f"batch {batch:5d}: {timings[batch] * 1e3:.2f} ms per face ({ratio:.2f}x batch 2048)", flush=True)
    return {"threads": torch.get_num_threads(), "seconds_per_face": timings}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    views = sub.add_parser("views", help="draw the augmented views of the training faces")
    views.add_argument("--train", required=True, help="fit npz (with crop_* arrays for the service-like crops)")
    views.add_argument("--out", required=True, help=".npy, uint8 [views, N, 48, 48]")
    views.add_argument("--views", type=int, default=12)
    views.add_argument("--pipeline-crop-prob", type=float, default=0.5)
    views.add_argument("--seed", type=int, default=1234)
    views.add_argument("--device", default="auto")
    views.add_argument("--limit", type=int, default=0, help="the seeded subset of train.py --limit (smoke runs)")
    logits = sub.add_parser("logits", help="score the bank with one teacher checkpoint")
    logits.add_argument("--checkpoint", required=True)
    logits.add_argument("--views", required=True)
    logits.add_argument("--jaffe", help="jaffe_views.npz")
    logits.add_argument("--val", help="held-out npz to log the teacher's figure")
    logits.add_argument("--out", required=True, help="output prefix")
    logits.add_argument("--budget-s", type=float, default=0.0)
    logits.add_argument("--device", default="auto")
    timing = sub.add_parser("time", help="seconds per face of one teacher at several batch sizes (default_batch)")
    timing.add_argument("--checkpoint", required=True)
    timing.add_argument("--views", required=True)
    timing.add_argument("--faces", type=int, default=2048)
    timing.add_argument("--device", default="auto")
    args = parser.parse_args(argv)
    device = pick_device(args.device)
    if args.command == "time":
        return time_batches(args.checkpoint, args.views, args.faces, device)
    if args.command == "views":
        started = time.monotonic()
        bank = make_views(args.train, args.views, args.pipeline_crop_prob, args.seed, device, args.limit)
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        np.save(args.out, bank)
        summary = {"views": list(bank.shape), "seconds": round(time.monotonic() - started, 1)}
    else:
        summary = score_bank(args.checkpoint, args.views, args.jaffe, args.val, args.out, device, args.budget_s)
    print(json.dumps(summary), flush=True)
    return summary


if __name__ == "__main__":
    main()
