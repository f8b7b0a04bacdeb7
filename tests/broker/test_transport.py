"""The HTTP client under the SDK (app/broker/transport.py) over real loopback connections: the
paper broker, and small raw servers that misbehave the way real ones do."""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest

from app.broker import transport
from app.broker.client import ClientSettings, OpenAlgoClient
from app.broker.errors import BrokerUnavailable, OutcomeUnknown
from app.broker.transport import LeanHttpClient, wants_httpx

SBIN = {"symbol": "SBIN", "exchange": "NSE", "product": "MIS"}
OK_BODY = b'{"status": "success", "data": {"availablecash": "100.00"}}'


@contextmanager
def raw_server(answer: bytes, *, close_after: bool,
               tls: ssl.SSLContext | None = None) -> Iterator[tuple[str, list[int], threading.Event]]:
    """A server on loopback that reads one request per connection, writes `answer` and then
    closes the connection (`close_after`) or keeps it open; over TLS with `tls`. Yields (url,
    accepted count, closed)."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted = [0]
    closed = threading.Event()
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            accepted[0] += 1
            if tls is not None:
                try:
                    conn = tls.wrap_socket(conn, server_side=True)
                except (ssl.SSLError, OSError):  # the client refused the certificate
                    conn.close()
                    continue
            with conn:
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                head, _, body = data.partition(b"\r\n\r\n")
                length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), 0)
                while len(body) < length:
                    body += conn.recv(65536)
                conn.sendall(answer)
                if not close_after:
                    stop.wait(10)
            closed.set()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}", accepted, closed
    finally:
        stop.set()
        thread.join(5)
        listener.close()


def keep_alive_answer(body: bytes = OK_BODY) -> bytes:
    return (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: keep-alive\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)


def test_sdk_calls_go_through_the_lean_client_on_one_kept_connection(broker, apikey):
    client = OpenAlgoClient(broker.url, apikey)
    try:
        assert isinstance(client._api.client, LeanHttpClient)
        for _ in range(3):
            client.funds()
        pool = client._api.client._idle
        assert [len(idle) for idle in pool.values()] == [1]  # three calls, one connection kept
    finally:
        client.close()
    assert client._api.client.is_closed and client._api.client._idle == {}


def test_the_httpx_setting_keeps_the_sdks_own_client(broker, apikey):
    client = OpenAlgoClient(broker.url, apikey, settings=ClientSettings(http_client="httpx"))
    try:
        assert isinstance(client._api.client, httpx.Client)
        assert client.funds()
    finally:
        client.close()


def test_a_connection_the_server_closed_while_idle_is_not_written_to():
    """The server answers with keep-alive, then closes the connection (an idle timeout). The next
    call must open a new connection, not fail on the dead one (for an order that failure would
    be an unknown outcome)."""
    with raw_server(keep_alive_answer(), close_after=True) as (url, accepted, closed):
        lean = LeanHttpClient(httpx.Timeout(5.0, connect=3.0))
        assert lean.post(f"{url}/api/v1/funds", json={"apikey": "k"}).json()["status"] == "success"
        assert closed.wait(10)
        answer = lean.post(f"{url}/api/v1/funds", json={"apikey": "k"})
        assert (answer.status_code, accepted[0]) == (200, 2)
        lean.close()


def test_without_the_idle_check_that_second_call_would_fail(monkeypatch):
    """The check above is what makes it pass (the test can fail)."""
    monkeypatch.setattr(transport, "_stale", lambda connection: False)
    with raw_server(keep_alive_answer(), close_after=True) as (url, _accepted, closed):
        lean = LeanHttpClient(httpx.Timeout(5.0, connect=3.0))
        lean.post(f"{url}/api/v1/funds", json={"apikey": "k"})
        assert closed.wait(10)
        with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):  # never a ConnectError ("not sent")
            lean.post(f"{url}/api/v1/funds", json={"apikey": "k"})
        lean.close()


@pytest.mark.parametrize("answer", [b"garbage\r\n\r\n", b""])
def test_a_garbled_or_missing_answer_is_unknown_for_an_order_and_unavailable_for_a_read(answer):
    with raw_server(answer, close_after=True) as (url, _accepted, _closed):
        client = OpenAlgoClient(url, "key")
        try:
            with pytest.raises(OutcomeUnknown):
                client.place_order(**SBIN, action="BUY", quantity=1)
            with pytest.raises(BrokerUnavailable):
                client.funds()
        finally:
            client.close()


def test_a_host_that_answers_too_late_is_a_read_timeout():
    with raw_server(b"", close_after=False) as (url, _accepted, _closed):  # reads, never answers
        client = OpenAlgoClient(url, "key", settings=ClientSettings(read_timeout=0.3))
        try:
            with pytest.raises(OutcomeUnknown, match="timed out"):
                client.place_order(**SBIN, action="BUY", quantity=1)
        finally:
            client.close()


def test_a_refused_connection_sent_nothing():
    lean = LeanHttpClient(httpx.Timeout(5.0, connect=3.0))
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    with pytest.raises(httpx.ConnectError):  # the SDK: connection_error → BrokerUnavailable
        lean.post(f"http://127.0.0.1:{port}/api/v1/placeorder", json={})


def test_a_proxy_in_the_environment_keeps_httpx_for_the_hosts_it_covers(monkeypatch):
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "http_proxy", "https_proxy",
                 "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    assert not wants_httpx("http://10.0.0.5:5000")
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.internal:3128")
    assert wants_httpx("http://10.0.0.5:5000")
    assert not wants_httpx("https://broker.example.com")  # no HTTPS proxy set
    monkeypatch.setenv("NO_PROXY", "10.0.0.5")
    assert not wants_httpx("http://10.0.0.5:5000")
    client = OpenAlgoClient("http://10.0.0.6:5000", "key")
    try:
        assert isinstance(client._api.client, httpx.Client)
    finally:
        client.close()


def test_an_informational_answer_is_never_left_for_the_next_call():
    """A proxy's 103 Early Hints before the final answer: the call fails as an unknown outcome
    and its connection is closed, so the next order cannot read this order's acknowledgement."""
    final = b'{"status": "success", "orderid": "ORDER-0"}'
    answer = b"HTTP/1.1 103 Early Hints\r\nLink: </x.css>; rel=preload\r\n\r\n" + keep_alive_answer(final)
    with raw_server(answer, close_after=False) as (url, _accepted, _closed):
        client = OpenAlgoClient(url, "key")
        try:
            with pytest.raises(OutcomeUnknown):
                client.place_order(**SBIN, action="BUY", quantity=1)
            assert client._api.client._idle.get(("http", "127.0.0.1", int(url.rsplit(":", 1)[1])), []) == []
        finally:
            client.close()


def _self_signed(tmp_path):
    """A certificate for 127.0.0.1 that no CA signed, and its key, as PEM files."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


def test_https_verifies_the_certificate(tmp_path, monkeypatch):
    """A server whose certificate no trusted CA signed: no connection (and no key sent); the same
    server is accepted once its certificate is the trusted bundle (SSL_CERT_FILE, as httpx)."""
    cert_file, key_file = _self_signed(tmp_path)
    server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_tls.load_cert_chain(cert_file, key_file)
    closing = keep_alive_answer().replace(b"keep-alive", b"close")
    monkeypatch.setattr(transport, "_ssl_context", None)
    with raw_server(closing, close_after=True, tls=server_tls) as (url, _accepted, _closed):
        secure = url.replace("http://", "https://")
        lean = LeanHttpClient(httpx.Timeout(5.0, connect=3.0))
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            lean.post(f"{secure}/api/v1/funds", json={"apikey": "secret"})
        monkeypatch.setattr(transport, "_ssl_context", None)
        monkeypatch.setenv("SSL_CERT_FILE", str(cert_file))
        assert lean.post(f"{secure}/api/v1/funds", json={"apikey": "k"}).status_code == 200
    monkeypatch.setattr(transport, "_ssl_context", None)  # the next test builds the default one again
