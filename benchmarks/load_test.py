"""Load test for the upload endpoint: N requests at concurrency C, then a table of throughput and latency.

Bounded in count (``--requests``) and in time (``--max-seconds``); every request sends the same real face
photo (scikit-image's astronaut as JPEG unless ``--image`` is given). Not a test: it prints numbers.

    PYTHONPATH=layers .venv/bin/uvicorn app:app --app-dir functions/api --host 127.0.0.1 --port 8000 \\
        --no-access-log --log-level warning > /tmp/meaa-api.log &
    .venv/bin/python benchmarks/load_test.py --requests 1000 --concurrency 8

Exit status 1 when any request failed (status other than 200, or a transport error).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import platform
import statistics
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx

DEFAULT_URL = "http://127.0.0.1:8000/upload-meaa-image"


@dataclass
class Results:
    latencies_s: list[float] = field(default_factory=list)
    errors: Counter = field(default_factory=Counter)
    face_counts: Counter = field(default_factory=Counter)
    server_total_ms: list[float] = field(default_factory=list)

    @property
    def sent(self) -> int:
        return len(self.latencies_s) + sum(self.errors.values())


def default_image() -> bytes:
    """scikit-image's astronaut (one face, 512x512) as JPEG quality 90."""
    import cv2
    from skimage import data

    ok, encoded = cv2.imencode(
        ".jpg", cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90]
    )
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return encoded.tobytes()


def request_kwargs(style: str, image: bytes) -> dict:
    if style == "multipart":
        return {"files": {"file": ("face.jpg", image, "image/jpeg")}}
    if style == "raw":
        return {"content": image, "headers": {"content-type": "image/jpeg"}}
    return {"json": {"image_base64": base64.b64encode(image).decode("ascii")}}


async def run_load(
    url: str, image: bytes, style: str, requests: int, concurrency: int, max_seconds: float, timeout_s: float
) -> tuple[Results, float]:
    results = Results()
    kwargs = request_kwargs(style, image)
    remaining = iter(range(requests))
    deadline = time.perf_counter() + max_seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async def worker(client: httpx.AsyncClient) -> None:
        for _ in remaining:
            if time.perf_counter() > deadline:
                return
            started = time.perf_counter()
            try:
                response = await client.post(url, **kwargs)
            except httpx.HTTPError as error:
                results.errors[type(error).__name__] += 1
                continue
            elapsed = time.perf_counter() - started
            if response.status_code != 200:
                code = (
                    response.json().get("error", {}).get("code", "?")
                    if response.headers.get("content-type") == "application/json"
                    else "?"
                )
                results.errors[f"{response.status_code} {code}"] += 1
                continue
            answer = response.json()
            results.latencies_s.append(elapsed)
            results.face_counts[answer["face_count"]] += 1
            results.server_total_ms.append(answer["timings_ms"].get("total", float("nan")))

    async with httpx.AsyncClient(timeout=timeout_s, limits=limits) as client:
        started = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        wall_s = time.perf_counter() - started
    return results, wall_s


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile (no interpolation: every number printed is a measured latency)."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-fraction * len(ordered) // 1))))
    return ordered[rank - 1]


def print_table(rows: list[tuple[str, str]]) -> None:
    width = max(len(name) for name, _ in rows)
    print(f"| {'metric'.ljust(width)} | value |")
    print(f"| {'-' * width} | ----- |")
    for name, value in rows:
        print(f"| {name.ljust(width)} | {value} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=DEFAULT_URL)
    parser.add_argument("--requests", type=int, default=1000, help="requests to send (N)")
    parser.add_argument("--concurrency", type=int, default=8, help="requests in flight (C)")
    parser.add_argument("--max-seconds", type=float, default=600.0, help="stop sending after this long")
    parser.add_argument("--style", choices=("multipart", "raw", "json"), default="multipart")
    parser.add_argument("--image", type=Path, help="image file to send (default: astronaut JPEG)")
    parser.add_argument("--timeout", type=float, default=60.0, help="per-request timeout in seconds")
    parser.add_argument("--warmup", type=int, default=8, help="untimed requests sent first")
    args = parser.parse_args()
    if args.requests < 1 or args.concurrency < 1:
        parser.error("--requests and --concurrency must be >= 1")

    image = args.image.read_bytes() if args.image else default_image()
    if args.warmup:
        asyncio.run(
            run_load(
                args.url,
                image,
                args.style,
                args.warmup,
                min(args.concurrency, args.warmup),
                args.max_seconds,
                args.timeout,
            )
        )
    results, wall_s = asyncio.run(
        run_load(args.url, image, args.style, args.requests, args.concurrency, args.max_seconds, args.timeout)
    )
    ok = results.latencies_s
    rows = [
        ("url", args.url),
        ("style", args.style),
        ("image bytes", str(len(image))),
        ("requests sent", str(results.sent)),
        ("concurrency", str(args.concurrency)),
        ("ok (200)", str(len(ok))),
        ("errors", str(sum(results.errors.values())) + (f" ({dict(results.errors)})" if results.errors else "")),
        ("wall time s", f"{wall_s:.2f}"),
        ("throughput req/s", f"{results.sent / wall_s:.2f}"),
    ]
    if ok:
        rows += [
            ("latency p50 ms", f"{percentile(ok, 0.50) * 1000:.1f}"),
            ("latency p90 ms", f"{percentile(ok, 0.90) * 1000:.1f}"),
            ("latency p99 ms", f"{percentile(ok, 0.99) * 1000:.1f}"),
            ("latency max ms", f"{max(ok) * 1000:.1f}"),
            ("server total p50 ms", f"{statistics.median(results.server_total_ms):.1f}"),
            ("face counts", str(dict(results.face_counts))),
        ]
    rows.append(("client python", platform.python_version()))
    print_table(rows)
    return 1 if results.errors or results.sent < args.requests else 0


if __name__ == "__main__":
    raise SystemExit(main())
