"""Real server processes for tests about connections and faults: gunicorn as `make run` starts it.

The server uses the test database (transactional tests see its rows) and its own var folder.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from activities.services import embedding_sweep_flag_clear
from tests.support import database_url, free_port
from tests.sync.support import WEBHOOK_SECRET

ADMIN_KEY = "server-test-admin-key"


@dataclass
class RunningServer:
    process: subprocess.Popen
    port: int
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-6000:]


def http_request(
    url: str, *, method: str = "GET", data: bytes | None = None, headers: dict | None = None, timeout: float = 15
) -> tuple[int, bytes]:
    """Status and body of one request (an HTTP error status is an answer, not an exception)."""
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def http_get(url: str, *, timeout: float = 10) -> tuple[int, bytes]:
    return http_request(url, timeout=timeout)


def server_wait_ready(server: RunningServer, *, path: str = "/healthz", timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert server.process.poll() is None, f"gunicorn exited early:\n{server.log()}"
        try:
            if http_get(server.url + path, timeout=5)[0] in (200, 503):
                return
        except OSError:
            pass
        time.sleep(0.2)
    pytest.fail(f"gunicorn never answered {path}:\n{server.log()}")


def gunicorn_start(tmp_path: Path, extra_env: dict | None = None, *, database: str | None = None) -> RunningServer:
    port = free_port()
    log_path = tmp_path / f"gunicorn-{port}.log"
    env = {
        **os.environ,
        "DATABASE_URL": database_url(database),
        "CRM_VAR_DIR": str(tmp_path / "var"),
        "PORT": str(port),
        "WEB_CONCURRENCY": "1",
        "CRM_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "CRM_ADMIN_KEY": ADMIN_KEY,
        **(extra_env or {}),
    }
    for name, value in list(env.items()):
        if value is None:
            env.pop(name)
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "gunicorn"), "yahealthy_crm.wsgi"],
        cwd=settings.BASE_DIR,
        env=env,
        stdout=log_path.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    server = RunningServer(process, port, log_path)
    server_wait_ready(server)
    return server


def server_stop(server: RunningServer, *, sig: int = signal.SIGTERM) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(server.process.pid, sig)
    try:
        server.process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(server.process.pid, signal.SIGKILL)
        server.process.wait(timeout=10)
    # Its webhooks left "embedding sweep scheduled" in the shared cache table, which a flush does not
    # empty: the next test's server would skip scheduling its own sweep for a minute.
    embedding_sweep_flag_clear()


@contextlib.contextmanager
def gunicorn_running(tmp_path: Path, extra_env: dict | None = None, **kwargs) -> Iterator[RunningServer]:
    server = gunicorn_start(tmp_path, extra_env, **kwargs)
    try:
        yield server
    finally:
        server_stop(server)


class TcpProxy:
    """A TCP forwarder the test can cut and restore: a dependency (PostgreSQL, Redis) going away.

    `cut()` closes every open connection and refuses new ones (connections are accepted and closed at
    once, as a restarting server does); `restore()` forwards again. The upstream is a TCP address or
    a Unix socket path.
    """

    def __init__(self, upstream: tuple[str, int] | str):
        self.upstream = upstream
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(128)
        self.port = self.listener.getsockname()[1]
        self.forwarding = True
        self.closed = False
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        threading.Thread(target=self._accept_loop, daemon=True).start()

    def _upstream_connect(self) -> socket.socket:
        if isinstance(self.upstream, str):
            upstream = socket.socket(socket.AF_UNIX)
            upstream.connect(self.upstream)
            return upstream
        return socket.create_connection(self.upstream, timeout=5)

    def _accept_loop(self) -> None:
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if not self.forwarding:
                client.close()
                continue
            try:
                upstream = self._upstream_connect()
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._open.update((client, upstream))
            for source, target in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, target), daemon=True).start()

    def _pipe(self, source: socket.socket, target: socket.socket) -> None:
        try:
            while chunk := source.recv(65536):
                target.sendall(chunk)
        except OSError:
            pass
        finally:
            for sock in (source, target):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            with self._lock:
                self._open.difference_update((source, target))

    def cut(self) -> None:
        self.forwarding = False
        with self._lock:
            open_sockets = list(self._open)
        for sock in open_sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def restore(self) -> None:
        self.forwarding = True

    def close(self) -> None:
        self.closed = True
        self.cut()
        self.listener.close()


def database_proxy() -> TcpProxy:
    """A TcpProxy in front of the test database server."""
    params = connection.settings_dict
    host = params["HOST"] or params.get("OPTIONS", {}).get("host", "") or "localhost"
    port = int(params["PORT"] or 5432)
    return TcpProxy(f"{host}/.s.PGSQL.{port}" if host.startswith("/") else (host, port))


def database_url_through(proxy: TcpProxy) -> str:
    params = connection.settings_dict
    password = f":{params['PASSWORD']}" if params["PASSWORD"] else ""
    return f"postgres://{params['USER']}{password}@127.0.0.1:{proxy.port}/{params['NAME']}"
