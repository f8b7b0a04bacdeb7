"""Process wiring: the HTTP and WebSocket servers, background loops and clean shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import sys

from aiohttp import web

from paperbroker import admin, logsafe, routes_account, routes_data, routes_options, routes_orders  # noqa: F401
from paperbroker import nse_calendar as cal
from paperbroker.api import BROKER_KEY, dispatch, fallback, health
from paperbroker.config import Config
from paperbroker.core import Broker
from paperbroker.state import Store, restore
from paperbroker.ws import Hub

log = logging.getLogger(__name__)
HOUSEKEEPING_SECONDS = 1.0
# Young-generation GC threshold while serving. A request allocates and frees its objects by reference
# counting (measured: a few cycles per minute to collect), but with 200 requests in flight the default
# threshold (700) ran about 5 collections a second, pausing the event loop for up to tens of ms
# (docs/benchmarks.md). At 50,000 a steady quote load runs none; order bursts still trigger them.
GC_GEN0_THRESHOLD = 50_000


def build_api_app(broker: Broker) -> web.Application:
    app = web.Application(client_max_size=4 * 1024 * 1024)
    app[BROKER_KEY] = broker
    app.router.add_route("*", "/api/v1/{tail:.*}", dispatch)
    app.router.add_get("/health/status", health)
    admin.setup(app)
    app.router.add_route("*", "/{tail:.*}", fallback)
    return app


class PaperBroker:
    """One running paper broker: HTTP API, WebSocket feed, market ticker, housekeeping, state."""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.broker = Broker(cfg)
        self.store = Store(cfg.state) if cfg.state else None
        if self.store is not None:
            snap = self.store.load()
            if snap is not None:
                restore(self.broker, snap)
        while len(self.broker.accounts) < cfg.accounts:
            self.broker.create_account()
        self.hub = Hub(self.broker)
        self._runners: list[web.AppRunner] = []
        self._tasks: list[asyncio.Task[None]] = []
        self.http_port = 0
        self.ws_port = 0

    async def _serve(self, app: web.Application, port: int) -> int:
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, self.cfg.host, port, backlog=1024, reuse_address=True)
        await site.start()
        self._runners.append(runner)
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        return int(sockets[0].getsockname()[1]) if sockets else port

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        # Partial fills are paced on the event loop in wall time, so they also run with a frozen clock.
        self.broker.engine.schedule = loop.call_later
        self.broker.engine.resume_parts()
        self.http_port = await self._serve(build_api_app(self.broker), self.cfg.port)
        ws_app = web.Application()
        ws_app.router.add_get("/{tail:.*}", self.hub.handler)
        self.ws_port = await self._serve(ws_app, self.cfg.ws_port)
        if not self.cfg.deterministic:
            self._tasks.append(asyncio.create_task(self._ticker()))
        self._tasks.append(asyncio.create_task(self._housekeeping()))

    async def _ticker(self) -> None:
        period = self.cfg.tick_ms / 1000.0
        while True:
            await asyncio.sleep(period)
            if self.cfg.market_hours == "real" and not cal.in_session(self.broker.clock.now_ist()):
                continue
            try:
                self.broker.market.step()
            except Exception:
                log.exception("market tick failed")

    async def _housekeeping(self) -> None:
        while True:
            await asyncio.sleep(HOUSEKEEPING_SECONDS)
            try:
                self.broker.engine.check_square_off()
                await self.hub.enforce_disconnect_faults()
                if self.store is not None:
                    self.store.save(self.broker)
            except Exception:
                log.exception("housekeeping failed")

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.hub.disconnect()
        for runner in reversed(self._runners):
            await runner.cleanup()
        if self.store is not None:
            self.store.save(self.broker, full=True)
            self.store.close()

    def announce(self) -> None:
        """The start lines: one ``api_key=`` per account, the admin token when generated, then ready."""
        lines = [f"api_key={key}" for key in self.broker.accounts]
        if self.broker.admin_token_generated:
            lines.append(f"admin_token={self.broker.admin_token}")
        lines.append(f"paperbroker ready http://{self.cfg.host}:{self.http_port} "
                     f"ws://{self.cfg.host}:{self.ws_port} http_port={self.http_port} ws_port={self.ws_port}")
        sys.stdout.write("\n".join(lines) + "\n")
        sys.stdout.flush()


async def serve(cfg: Config) -> None:
    """Run until SIGINT or SIGTERM, then shut down cleanly (state flushed, sockets closed)."""
    pb = PaperBroker(cfg)
    b = pb.broker
    logsafe.install(lambda: [*b.accounts, *b.retired_keys, b.admin_token])  # keys only in the start lines
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await pb.start()
    gc.collect()
    gc.freeze()  # the instrument master and backfill are long-lived: keep them out of GC scans (latency)
    gc.set_threshold(GC_GEN0_THRESHOLD, *gc.get_threshold()[1:])
    pb.announce()
    await stop.wait()
    log.info("shutting down")
    await pb.stop()
