"""The single-flight TTL cache: one load per key, shared by concurrent callers, within its TTL."""

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from app.services.short_cache import CacheWaitTimeout, SingleFlightCache

DEADLINE = 30.0


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class CountingLoader:
    def __init__(self, value="v", gate: threading.Event | None = None, error: Exception | None = None) -> None:
        self.calls = 0
        self.value, self.gate, self.error = value, gate, error
        self.started = threading.Event()
        self._lock = threading.Lock()

    def __call__(self):
        with self._lock:
            self.calls += 1
        self.started.set()
        if self.gate is not None:
            assert self.gate.wait(DEADLINE)
        if self.error is not None:
            raise self.error
        return f"{self.value}{self.calls}"


def _waiting(cache: SingleFlightCache, key, count: int) -> bool:
    """True once `count` callers are blocked on the key's load (its Event has waiters)."""
    entry = cache._entries.get(key)
    return entry is not None and len(entry.done._cond._waiters) >= count  # type: ignore[attr-defined]


def _wait_for(condition) -> None:
    event = threading.Event()
    for _ in range(int(DEADLINE / 0.01)):
        if condition():
            return
        event.wait(0.01)
    raise AssertionError("condition not met before the deadline")


def test_concurrent_gets_for_one_key_load_once_and_share_the_value():
    cache = SingleFlightCache()
    gate = threading.Event()
    load = CountingLoader(gate=gate)
    with ThreadPoolExecutor(10) as pool:
        futures = [pool.submit(cache.get, "k", 1.0, load) for _ in range(10)]
        _wait_for(lambda: _waiting(cache, "k", 9))
        gate.set()
        results = [f.result(DEADLINE) for f in futures]
    assert load.calls == 1
    assert results == ["v1"] * 10


def test_value_is_served_within_ttl_and_reloaded_after():
    clock = FakeClock()
    cache = SingleFlightCache(clock=clock)
    load = CountingLoader()
    assert cache.get("k", 1.0, load) == "v1"
    clock.now += 0.999
    assert cache.get("k", 1.0, load) == "v1"
    clock.now += 0.001
    assert cache.get("k", 1.0, load) == "v2"
    assert load.calls == 2


def test_keys_are_independent():
    cache = SingleFlightCache()
    one, two = CountingLoader("a"), CountingLoader("b")
    assert (cache.get(("x", 1), 5, one), cache.get(("x", 2), 5, two)) == ("a1", "b1")
    assert (one.calls, two.calls) == (1, 1)


def test_a_failure_reaches_every_waiter_and_is_remembered_only_for_error_ttl():
    clock = FakeClock()
    cache = SingleFlightCache(clock=clock, error_ttl=1.0)
    gate = threading.Event()
    failing = CountingLoader(gate=gate, error=RuntimeError("broker down"))
    with ThreadPoolExecutor(5) as pool:
        futures = [pool.submit(cache.get, "k", 300.0, failing) for _ in range(5)]
        _wait_for(lambda: _waiting(cache, "k", 4))
        gate.set()
        for future in futures:
            with pytest.raises(RuntimeError, match="broker down"):
                future.result(DEADLINE)
    assert failing.calls == 1
    with pytest.raises(RuntimeError):
        cache.get("k", 300.0, failing)  # still within the error TTL: not asked again
    assert failing.calls == 1
    clock.now += 1.0
    assert cache.get("k", 300.0, CountingLoader("ok")) == "ok1"


def test_error_ttl_never_outlasts_a_shorter_key_ttl():
    clock = FakeClock()
    cache = SingleFlightCache(clock=clock, error_ttl=5.0)
    with pytest.raises(RuntimeError):
        cache.get("k", 0.5, CountingLoader(error=RuntimeError("x")))
    clock.now += 0.5
    assert cache.get("k", 0.5, CountingLoader()) == "v1"


def test_a_waiter_gives_up_after_wait_timeout_and_the_load_still_completes():
    cache = SingleFlightCache(wait_timeout=0.05)
    gate = threading.Event()
    slow = CountingLoader(gate=gate)
    with ThreadPoolExecutor(1) as pool:
        leader = pool.submit(cache.get, "k", 5.0, slow)
        assert slow.started.wait(DEADLINE)
        with pytest.raises(CacheWaitTimeout):
            cache.get("k", 5.0, CountingLoader("other"))
        gate.set()
        assert leader.result(DEADLINE) == "v1"
    assert cache.get("k", 5.0, CountingLoader("other")) == "v1"


def test_an_abandoned_load_releases_its_waiters_and_is_not_remembered():
    cache = SingleFlightCache()
    gate = threading.Event()

    def interrupted():
        assert gate.wait(DEADLINE)
        raise KeyboardInterrupt

    results: list[BaseException] = []

    def leader():
        try:
            cache.get("k", 5.0, interrupted)
        except BaseException as exc:  # the test inspects what escaped
            results.append(exc)

    thread = threading.Thread(target=leader)
    thread.start()
    _wait_for(lambda: "k" in cache._entries)
    with ThreadPoolExecutor(1) as pool:
        waiter = pool.submit(cache.get, "k", 5.0, CountingLoader())
        _wait_for(lambda: _waiting(cache, "k", 1))
        gate.set()
        with pytest.raises(CacheWaitTimeout):
            waiter.result(DEADLINE)
    thread.join(DEADLINE)
    assert isinstance(results[0], KeyboardInterrupt)
    assert cache.get("k", 5.0, CountingLoader("fresh")) == "fresh1"


def test_size_stays_bounded_and_a_load_in_flight_is_never_dropped():
    clock = FakeClock()
    cache = SingleFlightCache(clock=clock, max_entries=3)
    gate = threading.Event()
    with ThreadPoolExecutor(1) as pool:
        slow = CountingLoader("slow", gate=gate)
        in_flight = pool.submit(cache.get, "busy", 60.0, slow)
        assert slow.started.wait(DEADLINE)
        for i in range(10):
            clock.now += 1
            cache.get(i, 100.0, CountingLoader(f"n{i}-"))
        assert len(cache) == 3
        assert "busy" in cache._entries and 9 in cache._entries  # the newest finished one is kept
        gate.set()
        assert in_flight.result(DEADLINE) == "slow1"


def test_invalidate_forgets_a_finished_value():
    cache = SingleFlightCache()
    load = CountingLoader()
    cache.get("k", 60.0, load)
    cache.invalidate("k")
    cache.invalidate("absent")
    assert cache.get("k", 60.0, load) == "v2"
