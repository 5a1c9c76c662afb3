"""Entry point of the Celery worker and beat (`celery -A yahealthy_crm.worker ...`, see Procfile).

Prepares the local environment (secret, embedded database) before Celery's Django fix-up reads the
settings; `yahealthy_crm.celery` itself stays free of side effects because every Django process
imports it.
"""

from yahealthy_crm.bootstrap import local_environment_prepare

local_environment_prepare()

from yahealthy_crm.celery import app  # noqa: E402 - after the environment exists

__all__ = ["app"]
