"""Serve the API with the try-it page and a day of results to look at, without AWS.

    make serve-demo        (or: .venv/bin/python -m devkit.serve_demo)

Starts moto's server on 127.0.0.1, scores the browser test's day of real frames for ``subject-1`` and
``subject-10`` through the batch handler (``devkit.timeline_day``), then serves the API (real
models, ``MEAA_UI=1``, ``MEAA_LOCAL=1``) against that table. Open the page, choose "Timeline", subject
``subject-1``, from 2026-11-25 00:00 to 2026-11-26 00:00 (UTC).
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import uvicorn

from devkit.aws import moto_environment, moto_server
from devkit.lambda_loader import load_function_module
from devkit.timeline_day import DAY, OTHER_SUBJECT, SUBJECT, write_day


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    with moto_server() as endpoint, tempfile.TemporaryDirectory() as media_dir:
        for name, value in moto_environment(endpoint, MEAA_UI="1", MEAA_LOCAL="1").items():
            os.environ.pop(name, None) if value is None else os.environ.__setitem__(name, value)
        print(f"scoring a day of frames for {SUBJECT} and {OTHER_SUBJECT} into moto at {endpoint} ...", flush=True)
        uploaded = write_day(Path(media_dir))
        print(f"{len(uploaded)} objects scored; timeline day: {DAY.date()} (UTC)", flush=True)
        print(f"open http://{args.host}:{args.port}/", flush=True)
        api = load_function_module("ApiFunction")  # the API's Lambda module, imported as Lambda would
        uvicorn.run(api.app, host=args.host, port=args.port)


if __name__ == "__main__":
    main()
