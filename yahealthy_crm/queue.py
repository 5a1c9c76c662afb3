"""Queue helper: enqueue a Celery task by its registered name.

Services sit below the task modules that call them, so they name a task instead of importing it;
Celery's own registry (filled by autodiscovery of every app's `tasks.py`) resolves the name. The
task object's `apply_async` is used rather than `send_task` so eager mode in tests behaves alike.
"""

from __future__ import annotations

import logging

from celery import current_app
from django.db import transaction

logger = logging.getLogger(__name__)


def task_enqueue(name: str, *, args: tuple | list = (), countdown: float | None = None) -> None:
    """Enqueue now. Raises what the broker raises; callers that must not fail catch and log."""
    current_app.tasks[name].apply_async(args=list(args), countdown=countdown)


def task_enqueue_logged(name: str, *, args: tuple | list = (), countdown: float | None = None) -> bool:
    """Enqueue now; a broker failure is logged, not raised (the work is recorded and swept later)."""
    try:
        task_enqueue(name, args=args, countdown=countdown)
    except Exception:
        logger.exception("could not enqueue %s%s", name, tuple(args))
        return False
    return True


def task_enqueue_on_commit(name: str, *, args: tuple | list = (), countdown: float | None = None) -> None:
    """Enqueue after the current transaction commits (never inside it); failures are logged."""
    transaction.on_commit(lambda: task_enqueue_logged(name, args=args, countdown=countdown))
