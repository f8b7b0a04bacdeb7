"""The background runner: runs the registered services in the one process that holds the lease.

Every process may start a runner (each gunicorn worker does, with BACKGROUND_SERVICES=auto);
its coordinator thread keeps trying to acquire the lease (app.services.lease) and, while it
leads, runs each service in its own daemon thread, renewing the lease every few seconds.
When the lease is lost, or cannot be renewed before its local deadline, every service is
told to stop at once; the process then goes back to waiting. No service runs while the
process is not the leader, and a new term never starts while a service of the previous one
is still finishing its iteration.

Services are registered on the app with `register_service(app, factory)`; a fresh instance is
made for every term, so no state survives a change of leader except what is in the database.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from datetime import datetime
from typing import Any

import click
from flask import Flask
from sqlalchemy import update
from sqlalchemy.exc import SQLAlchemyError

from app.extensions import db
from app.models.services import ServiceHeartbeat
from app.services.lease import Clock, Lease, make_lease, system_clock

logger = logging.getLogger(__name__)

_REGISTRY_KEY = "algomirror_services"
_RUNNER_KEY = "algomirror_runner"
STATUS_OK, STATUS_ERROR, STATUS_IDLE, STATUS_STOPPED = "ok", "error", "idle", "stopped"


class Service(ABC):
    """A background service: `run_once()` is called every `interval` seconds while this process leads.

    Attributes:
        name: unique; the key of its heartbeat row.
        interval: seconds between the end of one iteration and the start of the next.
        market_hours_only: idle (heartbeat "idle", no run_once) outside market hours, as
            decided by app.services.calendar.services_should_run for `exchange`.
        exchange: the exchange whose hours apply.
    """

    name: str = "service"
    interval: float = 30.0
    market_hours_only: bool = False
    exchange: str = "NSE"

    @abstractmethod
    def run_once(self) -> str | None:
        """One iteration, inside an app context. Returns optional details for the heartbeat."""

    def on_start(self) -> None:  # noqa: B027  (optional hook, empty by design)
        """Called in the service thread when a leadership term starts."""

    def on_stop(self) -> None:  # noqa: B027  (optional hook, empty by design)
        """Called in the service thread when the term ends (lost lease or shutdown)."""

    def still_leading(self) -> bool:
        """Fencing check for long iterations: call it before each side effect and stop when it is
        False (the lease was lost mid-iteration; another process may already run this service).
        The runner replaces it for every term; a service made outside a runner always leads."""
        return True

    def on_idle(self) -> None:  # noqa: B027  (optional hook, empty by design)
        """Called instead of run_once outside market hours (e.g. to close connections)."""


class FunctionService(Service):
    """A service made of a function, for simple loops and tests."""

    def __init__(self, name: str, func: Callable[[], str | None], *, interval: float = 30.0,
                 market_hours_only: bool = False, exchange: str = "NSE"):
        self.name, self.func, self.interval = name, func, interval
        self.market_hours_only, self.exchange = market_hours_only, exchange

    def run_once(self) -> str | None:
        return self.func()


ServiceFactory = Callable[[], Service]


def register_service(app: Flask, factory: ServiceFactory) -> None:
    """Add a service to the app's runner; `factory` (e.g. the class) makes one per leadership term."""
    app.extensions.setdefault(_REGISTRY_KEY, []).append(factory)


def registered_services(app: Flask) -> list[ServiceFactory]:
    return list(app.extensions.get(_REGISTRY_KEY, []))


class ServiceRunner:
    """Coordinates the lease and the service threads of one process."""

    def __init__(self, app: Flask, *, lease: Lease | None = None, ttl: float = 10.0, renew_interval: float = 3.0,
                 retry_interval: float = 3.0, clock: Clock = system_clock, stop_timeout: float = 10.0,
                 min_heartbeat_interval: float = 1.0):
        if renew_interval <= 0 or retry_interval <= 0:
            raise ValueError("renew and retry intervals must be positive")
        if lease is None:
            with app.app_context():
                lease = make_lease(db.engine, ttl=ttl, clock=clock)
        if renew_interval * 2 > lease.ttl.total_seconds():
            raise ValueError("renew at least twice per lease ttl")
        self.app = app
        self.lease = lease
        self.renew_interval = renew_interval
        self.retry_interval = retry_interval
        self.clock = clock
        self.stop_timeout = stop_timeout
        self.min_heartbeat_interval = min_heartbeat_interval
        self.pid = os.getpid()
        self._shutdown = threading.Event()
        self._term: threading.Event | None = None
        self._threads: list[threading.Thread] = []
        self._coordinator: threading.Thread | None = None
        self.terms = 0

    @property
    def holder(self) -> str:
        return self.lease.holder

    @property
    def is_leader(self) -> bool:
        return self._term is not None and self.lease.is_valid()

    # -- lifecycle --
    def start(self) -> threading.Thread:
        """Start the coordinator in a daemon thread (idempotent)."""
        if self._coordinator is None or not self._coordinator.is_alive():
            self._shutdown.clear()
            self._coordinator = threading.Thread(target=self.run, name="service-runner", daemon=True)
            self._coordinator.start()
        return self._coordinator

    def stop(self, timeout: float | None = None) -> None:
        """Stop the services, release the lease and end the coordinator."""
        self._shutdown.set()
        coordinator = self._coordinator
        if coordinator is not None and coordinator is not threading.current_thread():
            coordinator.join(timeout if timeout is not None else self.stop_timeout + 5)

    def run(self) -> None:
        """The coordinator loop; blocks until stop(). Safe to run in any thread."""
        logger.info("Service runner %s waiting for the lease", self.holder)
        try:
            while not self._shutdown.is_set():
                try:
                    if self._term is None:
                        self._try_to_lead()
                    else:
                        self._keep_leading()
                except Exception:
                    # Never let the coordinator die while services may be running.
                    logger.exception("Service runner error; services stop until the lease is confirmed")
                    self._end_term("runner error")
                    self._shutdown.wait(self.retry_interval)
        finally:
            self._end_term("shutdown")
            try:
                self.lease.close()
            except SQLAlchemyError:
                logger.warning("Closing the lease failed", exc_info=True)
            logger.info("Service runner %s stopped", self.holder)

    def _try_to_lead(self) -> None:
        if any(t.is_alive() for t in self._threads):
            # A service of the previous term is still inside run_once: never overlap with it.
            self._shutdown.wait(self.retry_interval)
            return
        try:
            acquired = self.lease.acquire()
        except SQLAlchemyError:
            logger.warning("Lease acquisition failed; retrying", exc_info=True)
            acquired = False
        if acquired:
            self._start_term()
        else:
            self._shutdown.wait(self.retry_interval)

    def _keep_leading(self) -> None:
        deadline = self.lease.valid_until()
        remaining = (deadline - self.clock()).total_seconds() if deadline else 0.0
        self._shutdown.wait(max(0.0, min(self.renew_interval, remaining)))
        if self._shutdown.is_set():
            return
        try:
            if not self.lease.renew():
                self._end_term("lease lost")
                return
        except SQLAlchemyError:
            logger.warning("Lease renewal failed", exc_info=True)
        if not self.lease.is_valid():
            self._end_term("lease could not be renewed in time")

    def _start_term(self) -> None:
        self.terms += 1
        term = threading.Event()
        self._term = term
        factories = registered_services(self.app)
        logger.info("Service runner %s leads (generation %s); starting %d services",
                    self.holder, self.lease.generation, len(factories))
        self._threads = []
        for factory in factories:
            try:
                with self.app.app_context():  # factories may read the config
                    service = factory()
            except Exception:
                logger.exception("Could not create service from %r", factory)
                continue
            thread = threading.Thread(target=self._service_loop, args=(service, term),
                                      name=f"service-{service.name}", daemon=True)
            self._threads.append(thread)
            thread.start()

    def _end_term(self, reason: str) -> None:
        term, self._term = self._term, None
        if term is None:
            return
        term.set()
        if reason != "shutdown":
            logger.warning("Service runner %s stops its services: %s", self.holder, reason)
        deadline = time.monotonic() + self.stop_timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        stuck = [t.name for t in self._threads if t.is_alive()]
        if stuck:
            logger.error("Services still finishing an iteration after %.0f s: %s", self.stop_timeout, stuck)

    # -- one service --
    def _service_loop(self, service: Service, term: threading.Event) -> None:
        service.still_leading = lambda: not term.is_set() and self.lease.is_valid()  # type: ignore[method-assign]
        with self.app.app_context():
            _call_hook(service, "on_start")
        last_written: tuple[str, str | None] | None = None
        last_write = 0.0
        while not term.is_set():
            if not self.lease.is_valid():
                # Past the local deadline: run nothing until the coordinator renews or ends the term.
                term.wait(min(0.2, service.interval))
                continue
            status, error, details = self._iterate(service)
            if term.is_set():
                break
            # A fast loop writes its heartbeat at most once per min_heartbeat_interval,
            # unless its status or error changes.
            if (status, error) != last_written or time.monotonic() - last_write >= self.min_heartbeat_interval:
                self._beat(service.name, status, error, details)
                last_written, last_write = (status, error), time.monotonic()
            term.wait(service.interval)
        with self.app.app_context():
            _call_hook(service, "on_stop")
        self._mark_stopped(service.name)

    def _iterate(self, service: Service) -> tuple[str, str | None, str | None]:
        with self.app.app_context():
            try:
                if service.market_hours_only and not self._market_hours(service):
                    service.on_idle()
                    return STATUS_IDLE, None, None
                return STATUS_OK, None, service.run_once()
            except Exception as exc:
                logger.exception("Service %s failed", service.name)
                return STATUS_ERROR, f"{type(exc).__name__}: {exc}", None

    def _market_hours(self, service: Service) -> bool:
        from app.services.calendar import services_should_run

        try:
            return services_should_run(service.exchange, self.clock())
        except SQLAlchemyError:
            # Unknown hours: run rather than idle, a monitor missing the open is the worse failure.
            logger.warning("Trading calendar unavailable; %s runs", service.name, exc_info=True)
            return True

    def _beat(self, name: str, status: str, error: str | None, details: str | None) -> None:
        now = self.clock()
        with self.app.app_context():
            try:
                row = db.session.get(ServiceHeartbeat, name)
                if row is None:
                    row = ServiceHeartbeat(service=name)
                    db.session.add(row)
                row.holder, row.status, row.last_beat_at = self.holder, status, now
                if error is not None:
                    # The error stays visible after recovery; its time is part of the message.
                    row.last_error = f"{_iso(now)} {error}"[:500]
                row.details = details[:500] if details else None
                db.session.commit()
            except SQLAlchemyError:
                db.session.rollback()
                logger.warning("Could not write the heartbeat of %s", name, exc_info=True)

    def _mark_stopped(self, name: str) -> None:
        with self.app.app_context():
            try:
                # Only our own row: the next leader may already have written its own.
                db.session.execute(update(ServiceHeartbeat)
                                   .where(ServiceHeartbeat.service == name, ServiceHeartbeat.holder == self.holder)
                                   .values(status=STATUS_STOPPED, last_beat_at=self.clock()))
                db.session.commit()
            except SQLAlchemyError:
                db.session.rollback()
                logger.warning("Could not mark %s stopped", name, exc_info=True)

    def status(self) -> dict[str, Any]:
        """This process's view, for the health page."""
        return {"holder": self.holder, "pid": self.pid, "leader": self.is_leader, "terms": self.terms,
                "services": [t.name.removeprefix("service-") for t in self._threads if t.is_alive()]}


def _call_hook(service: Service, hook: str) -> None:
    try:
        getattr(service, hook)()
    except Exception:
        logger.exception("Service %s %s failed", service.name, hook)


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


def runner_options(app: Flask) -> dict[str, float]:
    """Lease timings from the config (seconds): TTL 10, renew 3, retry 3 by default."""
    cfg = app.config
    return {"ttl": float(cfg.get("SERVICE_LEASE_TTL_SECONDS", 10)),
            "renew_interval": float(cfg.get("SERVICE_LEASE_RENEW_SECONDS", 3)),
            "retry_interval": float(cfg.get("SERVICE_LEASE_RETRY_SECONDS", 3))}


def current_runner(app: Flask) -> ServiceRunner | None:
    """This process's runner for the app, if one was started here."""
    runner = app.extensions.get(_RUNNER_KEY)
    return runner if isinstance(runner, ServiceRunner) and runner.pid == os.getpid() else None


def _autostart_allowed(app: Flask) -> bool:
    mode = str(app.config.get("BACKGROUND_SERVICES", "off")).strip().lower()
    if mode == "on":
        return True
    if mode != "auto" or app.testing or app.config.get("ENV_NAME") not in ("development", "production"):
        return False
    # Under the flask command only `flask run` serves requests; `flask db upgrade` and the
    # like must not start trading services (and `flask services` starts its own runner).
    ctx = click.get_current_context(silent=True)
    return ctx is None or ctx.info_name == "run"


def start_background_runner(app: Flask, **options: Any) -> ServiceRunner | None:
    """Start this process's runner for the app when BACKGROUND_SERVICES allows it.

    BACKGROUND_SERVICES: "off" never (the testing default); "auto" in development and production web
    processes (gunicorn workers, `python app.py`, `flask run`), not in other CLI commands or
    tests; "on" always. Safe to call in every worker: the lease picks one leader, and a second
    call in the same process returns the running instance.
    """
    if not _autostart_allowed(app):
        return None
    return ensure_runner(app, **options)


def ensure_runner(app: Flask, **options: Any) -> ServiceRunner:
    """Start (once per process) and return the app's runner, regardless of BACKGROUND_SERVICES."""
    existing = current_runner(app)
    if existing is not None:
        existing.start()
        return existing
    runner = ServiceRunner(app, **{**runner_options(app), **options})
    app.extensions[_RUNNER_KEY] = runner
    runner.start()
    # A clean exit hands the lease over at once instead of after its expiry.
    atexit.register(runner.stop)
    return runner


def run_until(app: Flask, stop: threading.Event, **options: Any) -> None:
    """Run the services in the calling thread's process until `stop` is set (flask services)."""
    runner = ensure_runner(app, **options)
    try:
        while not stop.wait(1.0):
            pass
    finally:
        runner.stop()
