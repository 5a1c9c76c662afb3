"""Keep-alive connections stay healthy through gunicorn: refusals don't poison them, idle ones live long.

A real client's pool reuses connections; a connection the server drops (or leaves with unread body
bytes in front of the next request) turns into a failure of an unrelated call.
"""

from __future__ import annotations

import http.client
import json
import random
import socket
import threading
import time

import pytest

from tests.servers import gunicorn_running
from tests.sync.support import URL as WEBHOOK_PATH

pytestmark = [pytest.mark.django_db(transaction=True)]


def _request(conn: http.client.HTTPConnection, method: str, path: str, body: bytes | None = None, headers=None):
    conn.request(method, path, body=body, headers={"Content-Type": "application/json", **(headers or {})})
    response = conn.getresponse()
    return response.status, response.getheader("Connection"), response.read()


@pytest.fixture(scope="module")
def server(tmp_path_factory, django_db_setup, django_db_blocker):
    with django_db_blocker.unblock(), gunicorn_running(tmp_path_factory.mktemp("gunicorn")) as running:
        yield running


def test_oversized_webhook_then_a_normal_request_on_the_same_connection(server):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    status, _, _ = _request(conn, "GET", "/healthz")
    assert status == 200
    first_socket = conn.sock

    # a body over the single endpoint's 256 KB limit, refused with 413 before the view reads it
    oversized = json.dumps({"entityType": "food_log", "payload": {"note": "x" * 600_000}}).encode()
    status, connection_header, body = _request(conn, "POST", WEBHOOK_PATH, oversized)
    assert status == 413, body
    assert json.loads(body)["error"]["code"] == "payload_too_large"
    assert connection_header != "close"

    # a batch over its 1 MiB limit, then a bad signature (401 before the body is read)
    status, _, _ = _request(conn, "POST", WEBHOOK_PATH + "s", b"[" + b" " * 1_500_000 + b"]")
    assert status == 413
    status, _, _ = _request(conn, "POST", WEBHOOK_PATH, b'{"entityType": "food_log"}' + b" " * 200_000)
    assert status == 401

    # the next, unrelated request on the same connection is answered
    status, _, body = _request(conn, "GET", "/healthz")
    assert status == 200, body
    assert conn.sock is first_socket, "the client had to reconnect: the server dropped the connection"
    conn.close()


def test_a_body_larger_than_the_drain_limit_is_answered_with_connection_close(server):
    declared = 50 * 1024 * 1024
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(
            f"POST {WEBHOOK_PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {declared}\r\n\r\n".encode()
            + b"{" * 65536
        )
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
    head = answer.split(b"\r\n\r\n", 1)[0].decode().lower()
    assert head.startswith("http/1.1 413"), head
    assert "connection: close" in head


def test_connections_idle_for_2_to_5_seconds_are_kept(server):
    # 100 requests over 10 keep-alive connections in parallel, 2-5 s idle between a connection's
    # requests (gunicorn's default keep-alive of 2 s dropped about one in ten of these).
    connections, requests_per_connection = 10, 10
    failures: list[str] = []
    reconnects: list[int] = []

    def client(index: int) -> None:
        pauses = random.Random(index).uniform  # fixed seed per connection
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        first_socket = None
        try:
            for number in range(requests_per_connection):
                try:
                    status, _, _ = _request(conn, "GET", "/healthz")
                    if status != 200:
                        failures.append(f"connection {index} request {number}: {status}")
                except (http.client.HTTPException, OSError) as error:
                    failures.append(f"connection {index} request {number}: {type(error).__name__}: {error}")
                    conn.close()
                first_socket = first_socket or conn.sock
                if conn.sock is not first_socket:
                    reconnects.append(index)
                time.sleep(pauses(2.0, 5.0))
        finally:
            conn.close()

    threads = [threading.Thread(target=client, args=(index,)) for index in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert failures == []
    assert reconnects == []


def test_a_hundred_requests_on_one_connection(server):
    # Together with the test above (idle gaps on ten connections at once, to keep the suite short):
    # the server never closes a busy connection after some number of requests either.
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    assert _request(conn, "GET", "/healthz")[0] == 200
    first_socket = conn.sock
    for number in range(99):
        status, connection_header, _ = _request(conn, "GET", "/healthz")
        assert status == 200, number
        assert connection_header != "close"
    assert conn.sock is first_socket
    conn.close()


def test_the_keep_alive_timeout_is_what_makes_the_difference(tmp_path):
    # Control for the test above: with gunicorn's old 2 s keep-alive, an idle connection is gone.
    with gunicorn_running(tmp_path, {"CRM_KEEPALIVE_S": "2"}) as short_lived:
        conn = http.client.HTTPConnection("127.0.0.1", short_lived.port, timeout=10)
        assert _request(conn, "GET", "/healthz")[0] == 200
        time.sleep(3)
        with pytest.raises((http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)):
            _request(conn, "GET", "/healthz")
        conn.close()
