"""`flask services`: run the background services in a process of their own.

For operators who prefer a separate process to services inside the web workers. It competes
for the same lease as the web processes, so running both is safe; set BACKGROUND_SERVICES=off
for the web processes to make this one the only candidate.
"""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType

import click
from flask import Flask, current_app
from flask.cli import with_appcontext

logger = logging.getLogger(__name__)


@click.command("services")
@click.option("--ttl", type=float, default=None, help="Lease time-to-live in seconds (default: config, 10).")
@click.option("--renew", "renew_interval", type=float, default=None,
              help="Seconds between lease renewals (default: config, 3).")
@click.option("--retry", "retry_interval", type=float, default=None,
              help="Seconds between attempts to take the lease (default: config, 3).")
@with_appcontext
def services_command(ttl: float | None, renew_interval: float | None, retry_interval: float | None) -> None:
    """Run the background services until SIGINT or SIGTERM."""
    from app.broker.sdk import api_class
    from app.gc_tuning import settle_heap
    from app.services.runner import registered_services, run_until

    app = current_app._get_current_object()  # type: ignore[attr-defined]
    stop = threading.Event()
    api_class()  # every service talks to brokers: load the SDK now, so that it is settled with the rest
    settle_heap()

    def _on_signal(signum: int, _frame: FrameType | None) -> None:
        logger.info("Signal %s received; stopping the services", signal.Signals(signum).name)
        stop.set()

    previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    options = {k: v for k, v in {"ttl": ttl, "renew_interval": renew_interval,
                                 "retry_interval": retry_interval}.items() if v is not None}
    names = [getattr(factory, "name", getattr(factory, "__name__", repr(factory)))
             for factory in registered_services(app)]
    click.echo(f"Background services: {', '.join(names) or 'none registered'}. Waiting for the lease; "
               "Ctrl+C to stop.")
    try:
        run_until(app, stop, **options)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    click.echo("Background services stopped.")


def init_app(app: Flask) -> None:
    app.cli.add_command(services_command)
