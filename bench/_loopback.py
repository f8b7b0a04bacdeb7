"""A lean HTTP/1.1 load client and a no-op server for loopback benchmarks.

Why not aiohttp's client: at 200 concurrent clients and 1,000 requests a second, a general-purpose
client spends more CPU per request than the server under test, and a client that is the bottleneck
measures itself. ``Connection`` keeps one keep-alive socket per simulated client, writes a prebuilt
request and reads exactly one response (``Content-Length`` framed, which is what the servers measured
here send); that is all a closed-loop benchmark needs.

The no-op server (``python bench/_loopback.py PORT DELAY_MS``) answers every request after
``DELAY_MS`` with a fixed JSON body, doing no other work. Run beside the real server in the same round,
it measures the floor that the client, the kernel's loopback and the machine's load add on their own,
so that a figure from a busy machine can be read as such.
"""

from __future__ import annotations

import asyncio
import itertools
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

NOOP_BODY = b'{"status":"success"}'
NOOP_RESPONSE = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                 + str(len(NOOP_BODY)).encode() + b"\r\n\r\n" + NOOP_BODY)


def build_post(host: str, port: int, path: str, body: bytes, headers: dict[str, str] | None = None) -> bytes:
    """The bytes of one keep-alive ``POST path`` with a JSON body."""
    extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
    head = (f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n{extra}\r\n")
    return head.encode() + body


def _frame(buf: bytearray) -> int | None:
    """Length of the first complete message (head and body) in ``buf``, or None when incomplete."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return None
    head = bytes(buf[:end]).lower()
    length = 0
    at = head.find(b"\r\ncontent-length:")
    if at >= 0:
        stop = head.find(b"\r\n", at + 2)
        length = int(head[at + 17: stop if stop >= 0 else len(head)])
    total = end + 4 + length
    return total if len(buf) >= total else None


class Connection(asyncio.Protocol):
    """One keep-alive connection carrying one request at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self._buf = bytearray()
        self._waiter: asyncio.Future[int] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self._buf += data
        if self._waiter is None:
            return
        total = _frame(self._buf)
        if total is None:
            return
        status = int(self._buf[9:12])  # "HTTP/1.1 200 ..."
        del self._buf[:total]
        waiter, self._waiter = self._waiter, None
        if not waiter.done():
            waiter.set_result(status)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(ConnectionError("connection closed"))

    async def request(self, raw: bytes) -> int:
        """Send one prebuilt request; return the response's status code."""
        assert self.transport is not None
        self._waiter = asyncio.get_running_loop().create_future()
        self.transport.write(raw)
        return await self._waiter

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


@dataclass
class PhaseResult:
    ok: int = 0
    errors: int = 0
    seconds: float = 0.0  # the recording window: requests started in it are counted
    latencies: list[float] = field(default_factory=list)  # seconds, one per request

    @property
    def per_second(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0

    def percentile_ms(self, pct: float) -> float:
        """Nearest-rank percentile of the latencies, in milliseconds."""
        ordered = sorted(self.latencies)
        rank = max(1, -(-len(ordered) * pct // 100))  # ceil(n * pct / 100), at least the first
        return ordered[int(rank) - 1] * 1000.0


async def closed_loop(host: str, port: int, requests: Sequence[bytes], clients: int, seconds: float,
                      stagger: float = 0.0, warmup: float = 0.0) -> PhaseResult:
    """``clients`` connections each send the next of ``requests`` as soon as the last one answered.

    ``stagger`` spreads the clients' first requests over that many seconds, so that many clients behave
    like independent users rather than one synchronised burst; then ``warmup`` seconds run unrecorded
    (first requests on new connections), and only requests started in the next ``seconds`` count.
    """
    loop = asyncio.get_running_loop()
    conns: list[Connection] = []
    for _ in range(clients):
        _transport, conn = await loop.create_connection(Connection, host, port)
        conns.append(conn)
    feed = itertools.cycle(requests)
    result = PhaseResult(seconds=seconds)
    start = time.perf_counter()
    record_from = start + stagger + warmup
    deadline = record_from + seconds

    async def client(n: int, conn: Connection) -> None:
        await asyncio.sleep(stagger * n / clients)
        while time.perf_counter() < deadline:
            raw = next(feed)
            t0 = time.perf_counter()
            status = await conn.request(raw)
            if t0 < record_from:
                continue
            result.latencies.append(time.perf_counter() - t0)
            if status == 200:
                result.ok += 1
            else:
                result.errors += 1

    try:
        await asyncio.gather(*(client(n, c) for n, c in enumerate(conns)))
    finally:
        for conn in conns:
            conn.close()
    return result


class _NoopServer(asyncio.Protocol):
    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.transport: asyncio.Transport | None = None
        self._buf = bytearray()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self._buf += data
        loop = asyncio.get_running_loop()
        while (total := _frame(self._buf)) is not None:
            del self._buf[:total]
            assert self.transport is not None
            loop.call_later(self.delay, self._answer)

    def _answer(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(NOOP_RESPONSE)


async def _serve_noop(port: int, delay: float) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: _NoopServer(delay), "127.0.0.1", port, backlog=1024)
    bound = server.sockets[0].getsockname()[1]
    sys.stdout.write(f"noop ready port={bound}\n")
    sys.stdout.flush()
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    import gc

    gc.freeze()
    asyncio.run(_serve_noop(int(sys.argv[1]), float(sys.argv[2]) / 1000.0))
