"""Jobs that write many users' profiles lock them first in user_id order, as webhook batches do.

Under mixed load (bench/load.py) the weekly churn job's UPDATE, which locks profiles in the order
its plan scans them, deadlocked with webhook batches: two batches answered 503 "deadlock detected".
"""

import datetime as dt
import threading
import time

import pytest
from django.db import connection, transaction
from django.utils import timezone

from coaching.queries import churn_scores_write
from profiles.models import CrmUserProfile
from profiles.queries import profiles_lock
from tests.factories import ProfileFactory

pytestmark = pytest.mark.django_db(transaction=True)


def _run(target, errors: list) -> threading.Thread:
    def body():
        try:
            target()
        except Exception as exc:  # reported by the test
            errors.append(exc)
        finally:
            connection.close()  # this thread's own connection

    thread = threading.Thread(target=body)
    thread.start()
    return thread


def test_the_churn_write_waits_for_a_batch_instead_of_deadlocking_with_it():
    # Stored (and listed) b before a: an UPDATE of both would reach b first.
    ProfileFactory(user_id="order_b")
    ProfileFactory(user_id="order_a")
    batch_holds_a = threading.Event()
    errors: list[Exception] = []

    def webhook_batch():
        # What a batch's profile lock does, paused between its two rows so that the job runs meanwhile.
        with transaction.atomic():
            profiles_lock(user_ids=["order_a"])
            batch_holds_a.set()
            time.sleep(0.5)
            profiles_lock(user_ids=["order_b"])

    def churn_job_chunk():
        batch_holds_a.wait(5)
        with transaction.atomic():
            churn_scores_write(
                user_ids=["order_b", "order_a"],
                risks=[0.9, 0.1],
                bands=["high", "low"],
                factors=[{}, {}],
                assessed_at=timezone.now(),
                week=dt.date(2026, 11, 23),
                model_version=None,
            )

    threads = [_run(webhook_batch, errors), _run(churn_job_chunk, errors)]
    for thread in threads:
        thread.join(30)

    assert errors == []
    assert dict(CrmUserProfile.objects.values_list("user_id", "churn_band")) == {"order_a": "low", "order_b": "high"}
