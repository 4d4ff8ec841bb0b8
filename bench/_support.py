"""Shared pieces of the benchmarks: a scratch PostgreSQL database, a fast receiver
process, hub processes. Benchmarks print figures; they never assert on time."""
from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Iterator

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

POSTGRES_URL = os.environ.get("HUB_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@contextlib.contextmanager
def scratch_postgres() -> Iterator[str]:
    """A fresh, migrated database, dropped afterwards."""
    from migrations.apply import upgrade

    base = make_url(POSTGRES_URL)
    name = f"hub_bench_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = base.set(database=name).render_as_string(hide_password=False)
    try:
        upgrade(url)
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def hub_env(database_url: str, data_dir: Path, encryption_key: str, **settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env.update({
        "HUB_DATABASE_URL": database_url,
        "HUB_ENCRYPTION_KEYS": encryption_key,
        "HUB_SECRET_KEY": "bench",
        "HUB_DATA_DIR": str(data_dir),
        "HUB_LOG__LEVEL": "WARNING",
    })
    env.update({f"HUB_{k.upper()}": v for k, v in settings.items()})
    return env


WORKER_APP = "hub-bench-worker"


def worker_env(env: dict[str, str]) -> dict[str, str]:
    """The env for `hub worker` processes whose connections wait_for_workers can see."""
    return {**env, "PGAPPNAME": WORKER_APP}


def wait_for_workers(database_url: str, count: int, timeout: float = 120) -> float:
    """Until `count` worker processes (started with worker_env) are connected to the
    database, i.e. imported, configured and polling: their start-up is not sync time."""
    from sqlalchemy import create_engine, text

    engine = create_engine(database_url)
    query = text("SELECT count(DISTINCT pid) FROM pg_stat_activity "
                 "WHERE datname = current_database() AND application_name = :app")
    try:
        def ready() -> bool:
            with engine.connect() as conn:
                return conn.execute(query, {"app": WORKER_APP}).scalar() >= count
        return wait_until(ready, timeout, interval=0.1)
    finally:
        engine.dispose()


def start(args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)


def stop(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        if p.poll() is None:
            p.terminate()
    for p in procs:
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()


def wait_until(condition, timeout: float, interval: float = 0.05) -> float:
    start_at = time.perf_counter()
    while time.perf_counter() - start_at < timeout:
        if condition():
            return time.perf_counter() - start_at
        time.sleep(interval)
    raise SystemExit(f"benchmark timed out after {timeout} s")
