"""Settings for the benchmark's gunicorn: the project's settings with the benchmark URLconf."""

from yahealthy_crm.settings import *  # noqa: F403

ROOT_URLCONF = "bench.bench_urls"
