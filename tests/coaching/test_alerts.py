"""Staff alerts: crossed into the high band this week, dead-letter syncs; once each, e-mailed, in admin."""

import datetime as dt
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.utils import timezone

from coaching.alerts import dead_letter_alerts_raise, high_risk_alerts_raise
from coaching.models import ChurnScoreWeekly, StaffAlert
from coaching.tasks import dead_letter_alerts_job
from sync.models import SyncEvent, SyncStatus
from tests.factories import ProfileFactory


def monday(day: dt.date) -> dt.date:
    return day - dt.timedelta(days=day.weekday())


def score(user_id: str, week: dt.date, band: str, risk: str) -> None:
    profile = ProfileFactory(user_id=user_id)
    ChurnScoreWeekly.objects.create(
        user=profile,
        week=week,
        churn_risk=Decimal(risk),
        churn_band=band,
        engagement_tier="bronze",
        lifecycle_stage="dormant",
        factors={"drivers": [{"feature": "recency", "label": "Inactive much longer than usual", "contribution": 0.3}]},
    )


@pytest.fixture
def weeks():
    this_week = monday(timezone.localdate())
    return this_week, this_week - dt.timedelta(days=7)


@pytest.mark.django_db
def test_users_who_crossed_into_high_this_week_are_alerted_once(settings, weeks):
    settings.CRM_ALERT_EMAILS = ["staff@example.com", "lead@example.com"]
    this_week, last_week = weeks
    score("crossed", last_week, "medium", "0.6")
    score("crossed", this_week, "high", "0.82")
    score("new_high", this_week, "high", "0.9")  # not scored last week
    score("still_high", last_week, "high", "0.8")
    score("still_high", this_week, "high", "0.85")
    score("medium", this_week, "medium", "0.6")

    assert high_risk_alerts_raise() == 2
    assert high_risk_alerts_raise() == 0  # run twice: once per crossing

    assert set(StaffAlert.objects.values_list("key", flat=True)) == {
        f"high_risk:crossed:{this_week}",
        f"high_risk:new_high:{this_week}",
    }
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["staff@example.com", "lead@example.com"]
    assert "2 user(s) crossed into high churn risk" in message.subject
    assert "User crossed crossed into the high churn band" in message.body
    assert "risk 0.82" in message.body
    assert "Inactive much longer than usual" in message.body
    assert "/admin/profiles/crmuserprofile/" in message.body
    assert StaffAlert.objects.filter(emailed_at__isnull=True).count() == 0


@pytest.mark.django_db
def test_without_recipients_alerts_are_only_flagged_in_admin(settings, weeks):
    settings.CRM_ALERT_EMAILS = []
    score("quiet", weeks[0], "high", "0.8")
    assert high_risk_alerts_raise() == 1
    assert len(mail.outbox) == 0
    assert StaffAlert.objects.get().emailed_at is None


@pytest.mark.django_db
def test_a_dead_letter_is_alerted_once(settings):
    settings.CRM_ALERT_EMAILS = ["ops@example.com"]
    event = SyncEvent.objects.create(
        direction="outbound",
        user_id="user_dl",
        entity_type="goal",
        operation="update",
        idempotency_key="out-dl-1",
        status=SyncStatus.DEAD_LETTER,
        attempts=6,
        error="HTTP 500 from the app",
    )
    SyncEvent.objects.create(
        direction="outbound", entity_type="goal", operation="update", idempotency_key="ok-1", status="delivered"
    )

    assert dead_letter_alerts_job() == {"raised": 1}
    assert dead_letter_alerts_raise() == 0

    alert = StaffAlert.objects.get()
    assert (alert.kind, alert.key, alert.sync_event_id) == ("dead_letter", f"dead_letter:{event.pk}", event.pk)
    assert len(mail.outbox) == 1
    assert "HTTP 500 from the app" in mail.outbox[0].body


@pytest.mark.django_db
def test_admin_lists_alerts_with_the_user_link_and_acknowledges_them(client, weeks):
    score("admin_user", weeks[0], "high", "0.8")
    high_risk_alerts_raise()
    admin_user = get_user_model().objects.create_superuser("boss", "boss@example.com", "pw-123456789")
    client.force_login(admin_user)

    page = client.get("/admin/coaching/staffalert/")
    assert page.status_code == 200
    assert b"/admin/profiles/crmuserprofile/" in page.content

    alert = StaffAlert.objects.get()
    client.post("/admin/coaching/staffalert/", {"action": "acknowledge", "_selected_action": [alert.pk]}, follow=True)
    alert.refresh_from_db()
    assert alert.acknowledged_at is not None
