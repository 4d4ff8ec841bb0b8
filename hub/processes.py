"""Long-running processes: web, workers, scheduler, and all three in one (serve)."""
from __future__ import annotations

import logging
import signal
import sys
import threading
from typing import Callable

from sqlalchemy import select

from hub.crm.worker import Worker
from hub.platform.runtime import worker_id
from hub.models import User
from hub.platform.runtime import Runtime
from hub.jobs.scheduler import LeaderScheduler

log = logging.getLogger(__name__)


def stop_on_signals(stop: threading.Event, on_stop: Callable[[], None] | None = None) -> None:
    def handler(signum: int, _frame: object) -> None:
        log.info("received %s, stopping", signal.Signals(signum).name)
        stop.set()
        if on_stop:
            on_stop()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def make_worker(runtime: Runtime) -> Worker:
    """A worker that delivers events to connectors, does each channel's background work
    (WhatsApp: send queued messages, sync templates when the scheduler asks), pulls
    from CRMs when the scheduler asks, moves broadcasts along (hub.broadcasts.pump) and
    runs the automations' scenarios (hub.automations.runtime)."""
    from hub.automations.runtime import Runner
    from hub.broadcasts.pump import BroadcastPump
    from hub.channels import registry
    from hub.crm.pull import ConnectorPuller
    from hub.wiring import install_reactions

    install_reactions()  # a scenario that closes a chat frees its place, a reply claims one
    owner = worker_id()
    sources = [source for kind in registry.every(runtime.config) for source in kind.background(runtime, owner).sources]
    return Worker(runtime.db, runtime.vault, runtime.config, owner=owner,
                  sources=[*sources, ConnectorPuller(runtime).run_once, BroadcastPump(runtime, owner).run_once,
                           Runner(runtime).run_once])


def start_workers(runtime: Runtime, threads: int, stop: threading.Event) -> list[threading.Thread]:
    started = []
    for i in range(threads):
        worker = make_worker(runtime)
        t = threading.Thread(target=worker.run, args=(stop,), name=f"worker-{i}", daemon=True)
        t.start()
        started.append(t)
    return started


def start_scheduler(runtime: Runtime, stop: threading.Event) -> threading.Thread:
    import hub.channels  # noqa: F401  (registers the channels' jobs)
    import hub.crm.pull  # noqa: F401  (registers the connector pulls)
    import hub.reports.jobs  # noqa: F401  (registers the scheduled reports)
    import hub.routing.jobs  # noqa: F401  (registers the routing sweep)
    from hub.wiring import install_reactions

    install_reactions()

    scheduler = LeaderScheduler(runtime)
    t = threading.Thread(target=scheduler.run, args=(stop,), name="scheduler", daemon=True)
    t.start()
    return t


def run_workers(runtime: Runtime, threads: int) -> None:
    if runtime.db.is_sqlite and threads > 1:
        log.warning("SQLite has one writer: running 1 worker thread instead of %d", threads)
        threads = 1
    stop = threading.Event()
    stop_on_signals(stop)
    for t in start_workers(runtime, threads, stop):
        while t.is_alive():
            t.join(0.5)


def run_scheduler(runtime: Runtime) -> None:
    stop = threading.Event()
    stop_on_signals(stop)
    t = start_scheduler(runtime, stop)
    while t.is_alive():
        t.join(0.5)


def welcome(runtime: Runtime) -> list[str]:
    """What `hub serve` prints at start: where to go first (setup, or sign-in)."""
    url = f"http://{runtime.config.web.host}:{runtime.config.web.port}/"
    with runtime.db.scope() as session:
        has_users = session.scalar(select(User.id).limit(1)) is not None
    first = "sign in" if has_users else "the first visit creates the admin account"
    return [f"hub is running at {url}  (stop with Ctrl+C)", f"  open {url} in a browser: {first}",
            f"  API docs: {url}api/v1/docs   health: {url}readyz"]


def run_web(runtime: Runtime, *, with_background: bool, announce: Callable[[str], None] = print) -> None:
    from waitress import create_server

    from hub.app import create_app

    app = create_app(runtime=runtime)
    cfg = runtime.config
    server = create_server(app, host=cfg.web.host, port=cfg.web.port, threads=cfg.web.threads,
                           ident="hub")
    stop = threading.Event()
    threads: list[threading.Thread] = []
    if with_background:
        threads += start_workers(runtime, 1 if runtime.db.is_sqlite else cfg.worker.threads, stop)
        if cfg.scheduler.enabled:
            threads.append(start_scheduler(runtime, stop))
    stop_on_signals(stop, server.close)
    for line in welcome(runtime):
        announce(line)
    try:
        server.run()
    except OSError:
        if not stop.is_set():
            raise
    finally:
        stop.set()
        for t in threads:
            t.join(5)
    sys.stdout.flush()
