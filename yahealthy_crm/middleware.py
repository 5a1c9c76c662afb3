import re
import uuid

from django.conf import settings

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


class RequestBodyDrainMiddleware:
    """Reads what is left of a request body the view did not read, up to REQUEST_DRAIN_MAX_BYTES.

    A view that refuses early (413 on the declared length, 401 on a bad signature, 429) answers
    without reading the body. On a keep-alive connection the unread bytes would then sit in front of
    the client's next request; gunicorn gives up draining them after 64 KiB and closes the connection
    although its answer said keep-alive, so the client's next, unrelated call fails. Reading the rest
    here (from the raw WSGI stream: only what is still on the wire) keeps the connection usable;
    bodies declared larger than the limit get `Connection: close` from gunicorn.conf.py instead.
    """

    def __init__(self, get_response):
        self.get_response = get_response
        self.max_bytes = settings.REQUEST_DRAIN_MAX_BYTES

    def __call__(self, request):
        response = self.get_response(request)
        stream = request.META.get("wsgi.input")
        if stream is not None and _declared_length(request) <= self.max_bytes:
            drained = 0
            while drained < self.max_bytes:
                chunk = stream.read(min(64 * 1024, self.max_bytes - drained))
                if not chunk:
                    break
                drained += len(chunk)
        return response


def _declared_length(request) -> int:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0
