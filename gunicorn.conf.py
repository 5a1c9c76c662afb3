"""gunicorn settings for every way the CRM is served (Procfile, Dockerfile, docker-compose, benchmarks).

gunicorn reads this file from the working directory; command-line flags still override it.
"""

import os

bind = f"{os.environ.get('CRM_HOST', '127.0.0.1')}:{os.environ.get('PORT', '5000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "3"))
# Threaded workers keep client connections alive (the app backend's webhooks reuse them) and overlap
# one request's database waits with another's work.
worker_class = "gthread"
threads = int(os.environ.get("WEB_THREADS", "4"))
timeout = 60
accesslog = os.environ.get("CRM_ACCESS_LOG", "-") or None
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
