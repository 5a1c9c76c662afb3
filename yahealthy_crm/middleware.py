import re
import uuid

from yahealthy_crm.request_context import request_id_var

_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


class RequestIdMiddleware:
    """Gives every request an id (the caller's X-Request-ID when it is sane) for audit rows and logs."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.headers.get("X-Request-ID", "")
        request_id = incoming if _SAFE_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        request.request_id = request_id
        token = request_id_var.set(request_id)
        try:
            response = self.get_response(request)
        finally:
            request_id_var.reset(token)
        response["X-Request-ID"] = request_id
        return response


class _CountingInput:
    """wsgi.input that counts what the application read of it."""

    def __init__(self, stream):
        self.stream = stream
        self.consumed = 0

    def read(self, *args):
        data = self.stream.read(*args)
        self.consumed += len(data)
        return data

    def readline(self, *args):
        data = self.stream.readline(*args)
        self.consumed += len(data)
        return data

    def readlines(self, *args):
        lines = self.stream.readlines(*args)
        self.consumed += sum(len(line) for line in lines)
        return lines

    def __iter__(self):
        for line in self.stream:
            self.consumed += len(line)
            yield line


class UnreadBodyDrain:
    """WSGI middleware: reads what is left of a request body the application did not read.

    A view that refuses early (413 on the declared length, 401 on a bad signature, 429) answers
    without reading the body. On a keep-alive connection the unread bytes sit in front of the
    client's next request; gunicorn gives up draining them after 64 KiB and closes the connection
    although its answer said keep-alive, so the client's next, unrelated call fails. Reading the rest
    (up to `max_bytes`, never past CONTENT_LENGTH) keeps the connection usable; bodies declared larger
    get `Connection: close` from gunicorn.conf.py instead.
    """

    def __init__(self, application, *, max_bytes: int):
        self.application = application
        self.max_bytes = max_bytes

    def __call__(self, environ, start_response):
        declared = _declared_length(environ)
        if declared <= 0 or declared > self.max_bytes:
            return self.application(environ, start_response)
        counting = environ["wsgi.input"] = _CountingInput(environ["wsgi.input"])
        response = self.application(environ, start_response)
        remaining = declared - counting.consumed
        while remaining > 0:
            chunk = counting.stream.read(min(64 * 1024, remaining))
            if not chunk:
                break
            remaining -= len(chunk)
        return response


def _declared_length(environ) -> int:
    try:
        return int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0
