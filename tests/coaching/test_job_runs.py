"""JobRun: every run recorded with its counts, one run per job at a time (409), GET status."""

import datetime as dt

import pytest
from django.test import override_settings
from django.utils import timezone

from coaching.jobs import JobAlreadyRunningError, JobCounts, job_run, job_run_start
from coaching.models import AiInsight, JobRun, JobRunStatus
from tests.factories import FoodLogFactory, ProfileFactory

KEY = "s3cret-admin-key"
HEADERS = {"X-Admin-Key": KEY}


@pytest.mark.django_db
def test_a_run_records_its_counts_and_its_end():
    def work(counts: JobCounts) -> None:
        counts.considered, counts.processed, counts.skipped = 3, 2, 1
        counts.failure("user_x", ValueError("bad data"))

    run = job_run(job="daily-insights", trigger="command", fn=work)

    run.refresh_from_db()
    assert (run.status, run.trigger, run.considered, run.processed, run.skipped, run.failed) == (
        "succeeded",
        "command",
        3,
        2,
        1,
        1,
    )
    assert run.finished_at >= run.started_at
    assert run.details["failures"] == [{"userId": "user_x", "error": "bad data"}]


@pytest.mark.django_db
def test_a_failing_run_is_marked_failed_with_its_error_and_the_job_can_run_again():
    def boom(counts: JobCounts) -> None:
        counts.considered = 5
        raise RuntimeError("database went away")

    with pytest.raises(RuntimeError):
        job_run(job="assess-churn", trigger="beat", fn=boom)
    run = JobRun.objects.get()
    assert (run.status, run.considered) == ("failed", 5)
    assert "RuntimeError: database went away" in run.error
    assert job_run(job="assess-churn", trigger="beat", fn=lambda counts: None).status == "succeeded"


@pytest.mark.django_db
def test_a_running_job_cannot_start_twice_but_another_job_can():
    first = job_run_start(job="daily-insights", trigger="beat")
    with pytest.raises(JobAlreadyRunningError) as caught:
        job_run_start(job="daily-insights", trigger="api")
    assert caught.value.run.pk == first.pk
    assert job_run_start(job="assess-churn", trigger="api").status == "running"
    assert JobRun.objects.filter(job="daily-insights").count() == 1


@pytest.mark.django_db
def test_a_run_left_running_by_a_dead_process_does_not_block_for_ever():
    JobRun.objects.create(
        job="daily-insights", trigger="beat", status="running", started_at=timezone.now() - dt.timedelta(hours=3)
    )
    run = job_run(job="daily-insights", trigger="beat", fn=lambda counts: None)
    assert run.status == "succeeded"
    abandoned = JobRun.objects.exclude(pk=run.pk).get()
    assert abandoned.status == "failed"
    assert "abandoned" in abandoned.error


@pytest.mark.django_db
@override_settings(CRM_ADMIN_KEY=KEY)
def test_trigger_answers_409_with_the_running_run_and_queues_nothing(client, celery_eager):
    running = JobRun.objects.create(job="daily-insights", trigger="beat", status="running", started_at=timezone.now())
    profile = ProfileFactory(engagement_tier="gold", last_active_at=timezone.now())
    FoodLogFactory(user=profile)

    response = client.post("/api/crm/jobs/daily-insights", headers=HEADERS)

    assert response.status_code == 409
    body = response.json()
    assert body["error"]["code"] == "job_already_running"
    assert body["error"]["details"]["runId"] == running.pk
    assert AiInsight.objects.count() == 0
    assert JobRun.objects.count() == 1


@pytest.mark.django_db
@override_settings(CRM_ADMIN_KEY=KEY)
def test_trigger_then_status_of_the_run(client, celery_eager):
    profile = ProfileFactory(engagement_tier="gold", last_active_at=timezone.now())
    FoodLogFactory(user=profile)

    response = client.post("/api/crm/jobs/daily-insights", headers=HEADERS)

    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "accepted"
    assert body["taskId"]
    status = client.get(f"/api/crm/jobs/{body['runId']}", headers=HEADERS)
    assert status.status_code == 200
    run = status.json()
    assert run["job"] == "daily-insights"
    assert run["trigger"] == "api"
    assert run["status"] == JobRunStatus.SUCCEEDED
    assert (run["considered"], run["processed"], run["skipped"], run["failed"]) == (1, 1, 0, 0)
    assert run["startedAt"]
    assert run["finishedAt"]
    assert run["error"] == ""
    assert AiInsight.objects.filter(user_id=profile.user_id).count() == 1


@pytest.mark.django_db
@override_settings(CRM_ADMIN_KEY=KEY)
def test_status_needs_the_admin_key_and_an_existing_run(client):
    run = JobRun.objects.create(job="assess-churn", trigger="beat", status="running", started_at=timezone.now())
    assert client.get(f"/api/crm/jobs/{run.pk}").status_code == 401
    assert client.get(f"/api/crm/jobs/{run.pk}", headers={"X-Admin-Key": "wrong"}).status_code == 401
    assert client.get(f"/api/crm/jobs/{run.pk + 1000}", headers=HEADERS).status_code == 404
    assert client.get(f"/api/crm/jobs/{run.pk}", headers=HEADERS).json()["status"] == "running"
