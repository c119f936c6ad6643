"""The API as ``make serve`` runs it: uvicorn in a subprocess on a free 127.0.0.1 port, for the
integration and browser tests; ``served`` runs any such server command (``make serve-demo``'s too)."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
STARTUP_WAIT_S = 120  # a readiness wait for slow machines, not a performance assertion


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def local_api_server(extra_env: dict[str, str] | None = None, drop_env: tuple[str, ...] = ()) -> Iterator[str]:
    """Serve ``meaa_api`` with the real models; yields its base URL once ``/health`` answers."""
    port = free_port()
    env = {**os.environ, **(extra_env or {})}
    for name in drop_env:
        env.pop(name, None)
    command = [
        sys.executable, "-m", "uvicorn", "--factory", "meaa_api.app:create_app_from_env",
        "--host", "127.0.0.1", "--port", str(port), "--no-access-log",
    ]  # fmt: skip
    with served(command, port, env) as url:
        yield url


@contextlib.contextmanager
def served(
    command: list[str], port: int, env: dict[str, str] | None = None, wait_s: float = STARTUP_WAIT_S
) -> Iterator[str]:
    """Run ``command`` (a server on ``port``) from the repository root; yields its base URL once ``/health``
    answers, and stops it afterwards. Its output goes to a file (a pipe nobody reads would fill and stall it),
    shown if it exits or does not answer."""
    with tempfile.TemporaryFile() as output:
        process = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=output, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + wait_s
            while not _answers(url):
                if process.poll() is not None or time.monotonic() > deadline:
                    output.seek(0)
                    shown = output.read().decode(errors="replace")[-8000:]
                    pytest.fail(f"{' '.join(command[:3])} did not answer /health (exit {process.poll()}): {shown}")
                time.sleep(0.2)
            yield url
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=2).status_code == 200
    except httpx.TransportError:
        return False
