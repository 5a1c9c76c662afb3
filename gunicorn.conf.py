"""gunicorn settings for every way the CRM is served (Procfile, Dockerfile, docker-compose, benchmarks).

gunicorn reads this file from the working directory; command-line flags still override it.
"""

import gc
import os

bind = f"{os.environ.get('CRM_HOST', '127.0.0.1')}:{os.environ.get('PORT', '5000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "3"))
# Threaded workers keep client connections alive (the app backend's webhooks reuse them) and overlap
# one request's database waits with another's work.
worker_class = "gthread"
threads = int(os.environ.get("WEB_THREADS", "4"))
timeout = 60
# An idle keep-alive connection must outlive every client's and proxy's own idle timeout (httpx 5 s,
# requests/urllib3 pools and Node's agent longer, AWS ALB and nginx upstreams 60 s): when the server
# closes first, a client that reuses the connection at that moment loses its request ("server
# disconnected"). gunicorn's default is 2 s.
keepalive = int(os.environ.get("CRM_KEEPALIVE_S", "75"))
accesslog = os.environ.get("CRM_ACCESS_LOG", "-") or None
# Path without the query string, no referer, no basic-auth user: a token or key a client puts in a URL
# never reaches the log (README "Security"). The request id ties a line to the app's own logs.
access_log_format = '%(h)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(B)s %(M)sms "%(a)s" %({x-request-id}o)s'
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")

# Bodies up to this size that a view refuses unread (413, 401, 429) are drained by
# yahealthy_crm.middleware.RequestBodyDrainMiddleware, so the connection stays usable. A body declared
# larger is not read at all: the answer says `Connection: close` and the client opens a new
# connection, instead of sending its next request into a connection gunicorn then drops.
REQUEST_DRAIN_MAX_BYTES = int(os.environ.get("CRM_REQUEST_DRAIN_MAX_BYTES", str(4 * 1024 * 1024)))


def pre_request(worker, req):
    for name, value in req.headers:
        if name == "CONTENT-LENGTH" and value.isdigit() and int(value) > REQUEST_DRAIN_MAX_BYTES:
            req.must_close = True


def post_worker_init(worker):
    # The application is loaded: move its modules' objects out of the garbage collector's reach, so
    # full collections only walk what requests allocate (a 500-event batch spent about a seventh of
    # its CPU in them; docs/sync.md "Benchmark"). The URLconf imports the views and their serializers.
    from django.urls import get_resolver

    get_resolver().url_patterns  # noqa: B018 - imported for its side effect
    gc.freeze()
