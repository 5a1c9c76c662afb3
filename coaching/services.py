"""Writes of the coaching app: insights and coaching-session embeddings (the daily job: daily_insights.py)."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from activities.embeddings import embed_texts, embedding_space
from activities.services import embedding_space_switch
from coaching.models import AiInsight, CoachingSession, InsightSource, InsightType
from coaching.selectors import coaching_session_text, insight_payload
from compliance.services import audit_record
from profiles.selectors import ai_consent_granted
from sync.outbox import outbox_record
from yahealthy_crm.actors import ActorType

logger = logging.getLogger(__name__)


def insight_create(
    *,
    user_id: str,
    title: str,
    body: str,
    recommendation: str = "",
    insight_type: str = InsightType.GENERAL,
    source: str = InsightSource.AI_ASSISTANT,
    actor_type: str = ActorType.AI_ASSISTANT,
    actor_id: str = "",
    metadata: dict | None = None,
    insight_date: dt.date | None = None,
) -> AiInsight:
    """Store, audit and sync out an insight. A job's insight carries `insight_date`: one per user, source
    and day (constraint crm_insight_one_per_job_day; a second one raises IntegrityError)."""
    with transaction.atomic():
        insight = AiInsight.objects.create(
            user_id=user_id,
            insight_date=insight_date,
            title=title[:200],
            body=body,
            recommendation=recommendation,
            insight_type=insight_type,
            source=source,
            metadata=metadata or {},
        )
        audit_record(
            actor_type=actor_type,
            actor_id=actor_id,
            action="insight.created",
            entity_type="insight",
            entity_id=insight.pk,
            user_id=user_id,
            changes={"title": insight.title, "insight_type": insight_type, "source": source},
        )
        outbox_record(
            user_id=user_id,
            entity_type="insight",
            operation="create",
            entity_id=insight.pk,
            origin=actor_type,
            data={"insight": insight_payload(insight)},
        )
    return insight


def insight_dismiss(*, insight: AiInsight, actor_type: str, actor_id: str) -> AiInsight:
    """Dismiss an insight (idempotent: a dismissed insight keeps its first dismissal time, no new audit
    and no second outbound event)."""
    with transaction.atomic():
        updated = AiInsight.objects.filter(pk=insight.pk, dismissed_at__isnull=True).update(dismissed_at=timezone.now())
        insight.refresh_from_db()
        if updated:
            audit_record(
                actor_type=actor_type,
                actor_id=actor_id,
                action="insight.dismissed",
                entity_type="insight",
                entity_id=insight.pk,
                user_id=insight.user_id,
            )
            outbox_record(
                user_id=insight.user_id,
                entity_type="insight",
                operation="dismiss",
                entity_id=insight.pk,
                origin=actor_type,
                data={"insight": insight_payload(insight)},
            )
    return insight


def coaching_session_embedding_refresh(*, session_id: int) -> bool:
    """Compute and store a session's embedding. Safe to run twice; False when there is nothing to do
    (no such session, or its user has no AI consent: coaching/privacy.py)."""
    consented = CoachingSession.objects.filter(pk=session_id).filter(ai_consent_granted())
    session = consented.defer("embedding").first()
    if session is None:
        return False
    (vector,) = embed_texts([coaching_session_text(session)])
    # Consent is checked again by the UPDATE: a withdrawal while the text was embedded wins.
    return bool(consented.update(embedding=vector))


@dataclass(frozen=True)
class EmbeddingSpaceChange:
    previous: str | None
    current: str
    activities_cleared: int
    sessions_cleared: int


def embeddings_space_sync(*, force: bool = False) -> EmbeddingSpaceChange | None:
    """Make every stored vector belong to the configured embedder's space (activities.embeddings).

    When the embedder changed since the vectors were stored (or with `force`), all activity and
    coaching-session vectors are cleared in one transaction, to be embedded again by the backfill
    (`manage.py embed_activities`): vectors of two embedders are never compared. None: nothing changed.
    """
    space = embedding_space()
    with transaction.atomic():
        switched = embedding_space_switch(space=space, force=force)
        if switched is None:
            return None
        previous, activities_cleared = switched
        sessions_cleared = CoachingSession.objects.filter(embedding__isnull=False).update(embedding=None)
    logger.info("embedding space %s -> %s: vectors cleared for re-embedding", previous, space)
    return EmbeddingSpaceChange(previous, space, activities_cleared, sessions_cleared)
