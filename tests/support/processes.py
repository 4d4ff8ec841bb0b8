"""Run hub commands as real subprocesses against the test database."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

from tests.conftest import ENCRYPTION_KEY


def hub_env(database_url: str, data_dir: Path, **settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env.update({
        "HUB_DATABASE_URL": database_url,
        "HUB_ENCRYPTION_KEYS": ENCRYPTION_KEY,
        "HUB_SECRET_KEY": "test-secret-key",
        "HUB_DATA_DIR": str(data_dir),
        "HUB_LOG__LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1",
    })
    env.update({f"HUB_{k.upper()}": v for k, v in settings.items()})
    return env


def start_hub(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "hub", *args], env=env,
        stdout=log.open("ab"), stderr=subprocess.STDOUT,
    )


def wait_for(condition: Callable[[], bool], timeout: float, what: str, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
