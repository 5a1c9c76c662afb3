"""Staff alerts: users who crossed into the high churn band this week, and dead-letter syncs.

Each alert is a `StaffAlert` row whose unique `key` makes it once per crossing
(`high_risk:<user>:<week>`, `dead_letter:<sync event id>`); it is flagged in admin until a staff
member acknowledges it, and e-mailed to `CRM_ALERT_EMAILS` through Django's e-mail framework (one
message per kind and run listing the new alerts). Without recipients alerts are only flagged in admin.
An alert whose e-mail failed is sent again by the next run (for a week).
"""

from __future__ import annotations

import datetime as dt
import logging

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, Q
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from coaching.models import ChurnScoreWeekly, StaffAlert
from profiles.models import ChurnBand, CrmUserProfile
from sync.models import SyncEvent, SyncStatus

logger = logging.getLogger(__name__)


class AlertKind:
    HIGH_RISK = "high_risk"
    DEAD_LETTER = "dead_letter"


ALERT_RESEND_WITHIN = dt.timedelta(days=7)  # an alert whose e-mail failed is retried this long
DEAD_LETTERS_PER_RUN = 500
_SUBJECTS = {
    AlertKind.HIGH_RISK: "[YAHealthy CRM] {n} user(s) crossed into high churn risk",
    AlertKind.DEAD_LETTER: "[YAHealthy CRM] {n} outbound sync(s) dead-lettered",
}


def user_admin_path(user_id: str) -> str:
    """The user 360 page in admin ("" when the user is gone)."""
    pk = CrmUserProfile.objects.filter(user_id=user_id).values_list("pk", flat=True).first()
    if pk is None:
        return ""
    try:
        return reverse("admin:profiles_crmuserprofile_change", args=[pk])
    except NoReverseMatch:
        return ""


def _alert_insert(**fields) -> StaffAlert | None:
    """Insert an alert; None when its key exists (already raised: once per crossing)."""
    try:
        with transaction.atomic():
            return StaffAlert.objects.create(**fields)
    except IntegrityError:
        return None


def high_risk_crossings(*, now: dt.datetime) -> list[ChurnScoreWeekly]:
    """This week's high-band rows whose user was not high the week before (or was not scored then).

    "This week" is the latest scored week not after today and at most 6 days old.
    """
    today = timezone.localdate(now)
    week = (
        ChurnScoreWeekly.objects.filter(week__lte=today, week__gt=today - dt.timedelta(days=7))
        .order_by("-week")
        .values_list("week", flat=True)
        .first()
    )
    if week is None:
        return []
    was_high = ChurnScoreWeekly.objects.filter(
        user_id=OuterRef("user_id"), week=week - dt.timedelta(days=7), churn_band=ChurnBand.HIGH
    )
    return list(
        ChurnScoreWeekly.objects.filter(week=week, churn_band=ChurnBand.HIGH)
        .exclude(Exists(was_high))
        .order_by("-churn_risk", "user_id")
    )


def _driver_words(factors) -> str:
    drivers = factors.get("drivers") if isinstance(factors, dict) else factors
    labels = [str(d.get("label") or d.get("feature")) for d in (drivers or []) if isinstance(d, dict)][:3]
    return f" Top drivers: {'; '.join(labels)}." if labels else ""


def high_risk_alerts_raise(*, now: dt.datetime | None = None) -> int:
    """Raise (and e-mail) one alert per user who crossed into the high band this week; the count raised."""
    now = now or timezone.now()
    raised = 0
    for row in high_risk_crossings(now=now):
        path = user_admin_path(row.user_id)
        message = (
            f"User {row.user_id} crossed into the high churn band in the week of {row.week}: "
            f"risk {float(row.churn_risk):.2f}.{_driver_words(row.factors)}" + (f" User 360: {path}" if path else "")
        )
        alert = _alert_insert(
            kind=AlertKind.HIGH_RISK, key=f"high_risk:{row.user_id}:{row.week}", user_id=row.user_id, message=message
        )
        raised += alert is not None
    alerts_email_pending(kind=AlertKind.HIGH_RISK, now=now)
    return raised


def dead_letter_alerts_raise(*, now: dt.datetime | None = None) -> int:
    """Raise (and e-mail) one alert per dead-lettered outbound sync event; the count raised."""
    now = now or timezone.now()
    alerted = StaffAlert.objects.filter(sync_event_id=OuterRef("pk"), kind=AlertKind.DEAD_LETTER)
    events = (
        SyncEvent.objects.filter(status=SyncStatus.DEAD_LETTER)
        .exclude(Exists(alerted))
        .only("id", "user_id", "entity_type", "operation", "attempts", "error")
        .order_by("id")[:DEAD_LETTERS_PER_RUN]
    )
    raised = 0
    for event in events:
        message = (
            f"Outbound sync {event.pk} ({event.entity_type}.{event.operation}"
            f"{f' for user {event.user_id}' if event.user_id else ''}) is a dead letter after {event.attempts} "
            f"attempts: {event.error[:300] or 'no error recorded'}. Retry it in admin or with manage.py retry_syncs."
        )
        alert = _alert_insert(
            kind=AlertKind.DEAD_LETTER,
            key=f"dead_letter:{event.pk}",
            user_id=event.user_id,
            sync_event_id=event.pk,
            message=message,
        )
        raised += alert is not None
    alerts_email_pending(kind=AlertKind.DEAD_LETTER, now=now)
    return raised


def alerts_email_pending(*, kind: str, now: dt.datetime) -> int:
    """E-mail the alerts of `kind` not e-mailed yet (one message) to CRM_ALERT_EMAILS; the count sent.

    The rows are locked while sending (SKIP LOCKED): two runs at once never send the same alert twice.
    """
    recipients = settings.CRM_ALERT_EMAILS
    if not recipients:
        return 0
    with transaction.atomic():
        alerts = list(
            StaffAlert.objects.select_for_update(skip_locked=True)
            .filter(Q(kind=kind), emailed_at__isnull=True, created_at__gte=now - ALERT_RESEND_WITHIN)
            .order_by("id")
        )
        if not alerts:
            return 0
        body = "\n\n".join(alert.message for alert in alerts)
        footer = "\n\nAcknowledge them in the CRM admin: Coaching > Staff alerts."
        try:
            send_mail(
                _SUBJECTS[kind].format(n=len(alerts)),
                body + footer,
                settings.DEFAULT_FROM_EMAIL,
                recipients,
            )
        except Exception:  # the next run tries again; the alerts stay flagged in admin meanwhile
            logger.exception("could not e-mail %s %s alert(s)", len(alerts), kind)
            return 0
        StaffAlert.objects.filter(pk__in=[alert.pk for alert in alerts]).update(emailed_at=timezone.now())
    return len(alerts)


def staff_alerts_acknowledge(*, alert_ids: list[int]) -> int:
    """Mark alerts acknowledged (admin); already acknowledged ones keep their first time."""
    return StaffAlert.objects.filter(pk__in=alert_ids, acknowledged_at__isnull=True).update(
        acknowledged_at=timezone.now()
    )
