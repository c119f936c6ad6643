"""The API as ``make serve`` runs it: uvicorn in a subprocess on a free 127.0.0.1 port, for the
integration and browser tests."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
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
    process = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_WAIT_S
        while True:
            if process.poll() is not None:
                pytest.fail(
                    f"uvicorn exited with {process.returncode}: {process.stdout.read().decode(errors='replace')}"
                )
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("uvicorn did not answer /health")
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
