"""What the wrk-driven benchmarks share: requests written up front for bench/wrk_replay.lua, signed
webhooks, the gunicorn under test and one wrk run's figures."""

from __future__ import annotations

import http.client
import json
import re
import socket
import subprocess
import time
from datetime import datetime
from pathlib import Path

WRK_SCRIPT = Path(__file__).resolve().parent / "wrk_replay.lua"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_wait_ready(port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status < 500:
                return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError("gunicorn did not become ready")


def signed_webhook_headers(webhook, *, key: str, body: str, now: datetime) -> dict[str, str]:
    """Standard Webhooks headers for `body` (webhook-id derived from the idempotency key)."""
    msg_id = f"msg_{key}"
    return {
        "Idempotency-Key": key,
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": webhook.sign(msg_id, now, body),
    }


def request_raw(port: int, method: str, path: str, headers: dict[str, str], body: bytes = b"") -> bytes:
    """One HTTP/1.1 request as wrk sends it (a JSON body on POST)."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{port}"]
    if method == "POST":
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def record_write(out, raw: bytes) -> None:
    """One record of a wrk_replay.lua request file: "<byte length>\\n<request>\\n"."""
    out.write(b"%d\n" % len(raw) + raw + b"\n")


def wrk_run(port: int, prefix: Path, *, seconds: float, connections: int, threads: int, log: Path) -> dict:
    """Replays `<prefix>.<thread>` with wrk for `seconds`; rates, latency percentiles and statuses."""
    command = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{seconds:g}s",
        "--timeout",
        "60s",
        "--latency",
        "-s",
        str(WRK_SCRIPT),
        f"http://127.0.0.1:{port}/",
        "--",
        str(prefix),
    ]
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    log.write_text(completed.stdout + completed.stderr)
    match = re.search(r"^WRK_JSON (.*)$", completed.stdout, re.MULTILINE)
    if completed.returncode != 0 or not match:
        raise RuntimeError(f"wrk failed ({completed.returncode}): {completed.stderr.strip() or completed.stdout}")
    result = json.loads(match.group(1))
    statuses: dict[int, int] = {}
    for thread in result["threads"]:
        for status, count in thread["statuses"].items():
            statuses[int(status)] = statuses.get(int(status), 0) + count
    seconds_run = result["duration_us"] / 1e6
    ok = sum(count for status, count in statuses.items() if 200 <= status < 300)
    errors = result["errors"]
    return {
        "requests": result["requests"],
        "ok": ok,
        "statuses": dict(sorted(statuses.items())),
        "socket_errors": errors["connect"] + errors["read"] + errors["write"] + errors["timeout"],
        "non_2xx": result["requests"] - ok,
        "seconds": seconds_run,
        "rps": result["requests"] / seconds_run,
        "ok_rps": ok / seconds_run,
        "p50_ms": result["latency_us"]["p50"] / 1000,
        "p99_ms": result["latency_us"]["p99"] / 1000,
        "records": None,
        "repeats": sum(thread["repeats"] for thread in result["threads"]),
    }
