"""Pure adapter rules: lenient number parsing, the SDK-error decision table, client-side pacing."""

from decimal import Decimal

import pytest

from app.broker.client import raise_for_error
from app.broker.errors import (
    BrokerAuthError,
    BrokerRequestError,
    BrokerUnavailable,
    NotOpenAlgo,
    OrderRejected,
    OutcomeUnknown,
    RateLimited,
)
from app.broker.parsing import normalize_status, parse_funds, parse_order_ack, to_decimal, to_int
from app.broker.ratelimit import SlidingWindowLimiter


@pytest.mark.parametrize(("raw", "expected"), [
    ("320.66", Decimal("320.66")), ("1,234.50", Decimal("1234.50")), (12, Decimal(12)), (0.1, Decimal("0.1")),
    (None, Decimal(0)), ("", Decimal(0)), ("n/a", Decimal(0)), (True, Decimal(0)),
])
def test_to_decimal(raw, expected):
    assert to_decimal(raw) == expected


def test_to_int_rounds_numeric_strings():
    assert to_int("-10") == -10 and to_int("65.0") == 65 and to_int(None) == 0


@pytest.mark.parametrize(("raw", "expected"), [
    ("COMPLETE", "complete"), ("trigger_pending", "trigger pending"), ("Canceled", "cancelled"), ("open", "open"),
])
def test_status_normalization(raw, expected):
    assert normalize_status(raw) == expected


def test_zerodha_string_funds():
    funds = parse_funds({"status": "success", "data": {"availablecash": "320.66", "collateral": "0.00",
                                                       "m2mrealized": "3.27", "m2munrealized": "-7.88",
                                                       "utiliseddebits": "679.34"}})
    assert (funds.available_cash, funds.m2m_unrealized, funds.utilised_debits) == (
        Decimal("320.66"), Decimal("-7.88"), Decimal("679.34"))


def test_funds_without_fields_is_not_openalgo():
    with pytest.raises(NotOpenAlgo):
        parse_funds({"status": "success", "data": {"balance": 5}})


def test_order_ack_variants():
    assert parse_order_ack({"status": "success", "orderid": 250408000989443}).order_ids == ["250408000989443"]
    semi = parse_order_ack({"status": "success", "mode": "semi_auto", "pending_order_id": 7})
    assert semi.order_ids == [] and semi.pending_order_id == "7"
    split = parse_order_ack({"status": "success", "results": [{"orderid": "1"}, {"status": "error"}, {"orderid": "3"}]})
    assert split.order_ids == ["1", "3"]


def _http(code, body):
    return {"status": "error", "message": f"HTTP {code}: {body}", "code": code, "error_type": "http_error"}


@pytest.mark.parametrize(("result", "is_order", "expected"), [
    ({"status": "error", "error_type": "connection_error", "message": "x"}, True, BrokerUnavailable),
    ({"status": "error", "error_type": "timeout_error", "message": "x"}, True, OutcomeUnknown),
    ({"status": "error", "error_type": "timeout_error", "message": "x"}, False, BrokerUnavailable),
    ({"status": "error", "error_type": "http_error", "message": "HTTP error occurred: reset"}, True, OutcomeUnknown),
    ({"status": "error", "error_type": "http_error", "message": "HTTP error occurred: reset"}, False,
     BrokerUnavailable),
    (_http(403, '{"status":"error","message":"Invalid openalgo apikey"}'), False, BrokerAuthError),
    (_http(401, '{"status":"error","message":"Invalid openalgo apikey"}'), True, BrokerAuthError),
    (_http(429, '{"message":"10 per 1 second"}'), True, RateLimited),
    (_http(500, '{"status":"error","message":"broker down"}'), False, BrokerUnavailable),
    (_http(500, '{"status":"error","message":"broker down"}'), True, OutcomeUnknown),
    (_http(502, "<html>Bad gateway</html>"), False, BrokerUnavailable),
    (_http(504, "<html>Gateway timeout</html>"), True, OutcomeUnknown),
    ({"status": "error", "message": "Invalid JSON response from server", "error_type": "json_error"}, True,
     OutcomeUnknown),
    (_http(404, "<html>Not found</html>"), False, NotOpenAlgo),
    (_http(400, '{"status":"error","message":"LIMIT orders require price"}'), True, OrderRejected),
    (_http(400, '{"status":"error","message":{"symbol":["Unknown field."]}}'), False, BrokerRequestError),
    ({"status": "error", "message": "Invalid JSON response from server", "error_type": "json_error"}, False,
     NotOpenAlgo),
    ({"status": "error", "message": "rejected by RMS", "code": 200, "error_type": "api_error"}, True, OrderRejected),
    ({"data": {}}, False, NotOpenAlgo),
])
def test_error_decision_table(result, is_order, expected):
    with pytest.raises(expected):
        raise_for_error(result, endpoint="x", is_order=is_order)


def test_success_passes_through():
    body = {"status": "success", "data": {"message": "pong"}}
    assert raise_for_error(body, endpoint="ping", is_order=False) is body


def test_validation_message_dict_is_flattened():
    with pytest.raises(BrokerRequestError, match=r"symbol: Unknown field\."):
        raise_for_error(_http(400, '{"status":"error","message":{"symbol":["Unknown field."]}}'), endpoint="q",
                        is_order=False)


class FakeClock:
    def __init__(self):
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.slept.append(seconds)
        self.now += seconds


def test_limiter_queues_the_eleventh_order_until_the_window_frees():
    clock = FakeClock()
    limiter = SlidingWindowLimiter(10, 1.0, clock=clock, sleep=clock.sleep)
    for i in range(10):
        clock.now = i * 0.01
        limiter.release(limiter.acquire())  # answered at once, at t = i * 0.01
    clock.now = 0.5
    limiter.acquire()  # waits until the first answer (t = 0) is one window old
    assert clock.now == pytest.approx(1.0)


def test_limiter_counts_requests_in_flight():
    clock = FakeClock()
    limiter = SlidingWindowLimiter(2, 1.0, clock=clock, sleep=clock.sleep)
    first = limiter.acquire()
    limiter.acquire()
    with pytest.raises(TimeoutError):
        limiter.acquire(timeout=5.0)  # both still in flight: no slot, however long we wait
    limiter.release(first)
    clock.now += 1.0
    limiter.acquire(timeout=0.1)


def test_limiter_window_starts_when_the_answer_arrives():
    clock = FakeClock()
    limiter = SlidingWindowLimiter(1, 1.0, clock=clock, sleep=clock.sleep)
    slot = limiter.acquire()
    clock.now = 0.8  # a slow answer
    limiter.release(slot)
    limiter.acquire()
    assert clock.now == pytest.approx(1.8)


def test_limiter_refuses_to_wait_past_timeout():
    clock = FakeClock()
    limiter = SlidingWindowLimiter(1, 1.0, clock=clock, sleep=clock.sleep)
    limiter.release(limiter.acquire())
    with pytest.raises(TimeoutError):
        limiter.acquire(timeout=0.2)


def test_registry_keeps_a_replaced_client_usable_for_a_grace_period():
    from app.broker.client import ClientRegistry

    registry = ClientRegistry()
    old = registry.get(1, "http://127.0.0.1:9", "key-one")
    assert registry.get(1, "http://127.0.0.1:9", "key-one") is old
    new = registry.get(1, "http://127.0.0.1:9", "key-two")  # the key changed
    assert new is not old
    assert not old._api.client.is_closed  # a call still running on it is not cut off
    registry.RETIRE_AFTER_SECONDS = 0.0
    registry.get(2, "http://127.0.0.1:9", "other")
    assert old._api.client.is_closed
    registry.close_all()
    assert new._api.client.is_closed
