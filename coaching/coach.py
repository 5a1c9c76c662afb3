"""The AI coach's ask: retrieval, the provider's tool loop, offline fallback, the coaching session."""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from activities.embeddings import embed_texts
from coaching.models import AiInsight, CoachingConversation, CoachingSession, CoachingStatus
from coaching.providers import (
    CoachProvider,
    CoachUnavailableError,
    InsightDraft,
    OfflineCoach,
    RetentionProposal,
    coach_provider_get,
    intents_detect,
)
from coaching.selectors import coach_context_retrieve, coach_facts_get, conversation_turns_get
from coaching.tools import ToolContext
from compliance.pii import redact_pii
from compliance.services import audit_record
from profiles.models import CrmUserProfile
from yahealthy_crm.actors import ActorType
from yahealthy_crm.queue import task_enqueue_on_commit

logger = logging.getLogger(__name__)

SESSION_EMBED_TASK = "coaching.tasks.coaching_session_embed_task"

FALLBACK_NOTE = "(The AI model is unavailable right now, so this answer comes from YAHealthy's built-in coach.)"


@dataclass
class AskResult:
    session: CoachingSession
    conversation_id: uuid.UUID
    answer: str
    tools_used: list[str]
    provider: str
    suggested_goal_ids: list[int] = field(default_factory=list)
    fallback_reason: str = ""
    model_seconds: float = 0.0  # waiting for the chat model and the embedding model


def coach_ask(
    *,
    profile: CrmUserProfile,
    message: str,
    requested_by: str = "",
    conversation: CoachingConversation | None = None,
) -> AskResult:
    """Answer one question of the user: history, retrieval, provider loop (tools), fallback, session, audit.

    `conversation`: the user's conversation this ask continues (the caller looked it up for this user:
    conversation_get_for_user); None starts a new one. The coach rereads its last turns within
    COACH_HISTORY_TOKEN_BUDGET. The caller checked scope, consent and rate limits. Tool writes commit
    as they happen (each in its own transaction): a model round can take seconds and must not hold a
    transaction open.
    """
    started = time.perf_counter()
    redacted = redact_pii(message.strip())
    provider = coach_provider_get()
    ctx = ToolContext(profile=profile, actor_id=f"coach:{provider.name}")
    facts = coach_facts_get(profile=profile, today=ctx.today)
    history = (
        conversation_turns_get(conversation_id=conversation.pk, token_budget=settings.COACH_HISTORY_TOKEN_BUDGET)
        if conversation is not None
        else []
    )
    model_seconds = 0.0
    try:
        waited = time.perf_counter()
        (query_vector,) = embed_texts([redacted])
        model_seconds += time.perf_counter() - waited
        retrieved = coach_context_retrieve(
            user_id=profile.user_id,
            query_vector=query_vector,
            conversation_id=conversation.pk if conversation is not None else None,
        )
    except Exception:  # retrieval is context, not a requirement: answer without it
        logger.exception("coach retrieval failed")
        retrieved = []
    fallback_reason = ""
    try:
        answer = provider.answer(ctx=ctx, message=redacted, facts=facts, retrieved=retrieved, history=history)
    except CoachUnavailableError as exc:
        logger.warning("coach provider %s failed (%s); answering offline", provider.name, exc)
        fallback_reason = exc.reason
        ctx.actor_id = "coach:offline"
        answer = OfflineCoach().answer(ctx=ctx, message=redacted, facts=facts, retrieved=retrieved, history=history)
        answer.text = f"{FALLBACK_NOTE}\n\n{answer.text}"
    model_seconds += answer.model_seconds
    if not ctx.topics:  # the model did not log topics: the message's, so a later follow-up can resolve them
        ctx.topics = intents_detect(redacted)[0]
    text = redact_pii(answer.text)
    latency_ms = round((time.perf_counter() - started) * 1000)
    with transaction.atomic():
        now = timezone.now()
        if conversation is None:
            conversation = CoachingConversation.objects.create(user_id=profile.user_id, last_turn_at=now)
        else:
            CoachingConversation.objects.filter(pk=conversation.pk).update(last_turn_at=now)
        session = CoachingSession.objects.create(
            user_id=profile.user_id,
            conversation=conversation,
            message=redacted,
            response=text,
            topics=ctx.topics,
            tools_used=ctx.tools_used,
            tool_calls=ctx.calls,
            provider=answer.provider,
            model=answer.model[:64],
            status=CoachingStatus.FALLBACK if fallback_reason else CoachingStatus.SUCCESS,
            prompt_tokens=answer.prompt_tokens,
            completion_tokens=answer.completion_tokens,
            latency_ms=latency_ms,
            summary=ctx.summary,
            fallback_reason=fallback_reason,
        )
        if ctx.insight_ids:
            AiInsight.objects.filter(pk__in=ctx.insight_ids).update(coaching_session=session)
        audit_record(
            actor_type=ActorType.AI_ASSISTANT,
            actor_id=ctx.actor_id,
            action="coaching.session_created",
            entity_type="coaching_session",
            entity_id=session.pk,
            user_id=profile.user_id,
            changes={
                "requestedBy": requested_by,
                "conversationId": str(conversation.pk),
                "historyTurns": len(history),
                "provider": answer.provider,
                "model": answer.model,
                "toolsUsed": ctx.tools_used,
                "fallbackReason": fallback_reason,
                "latencyMs": latency_ms,
            },
        )
        # The session is stored either way; `embed_activities` backfills an embedding that was lost.
        task_enqueue_on_commit(SESSION_EMBED_TASK, args=[session.pk])
    return AskResult(
        session=session,
        conversation_id=conversation.pk,
        answer=text,
        tools_used=ctx.tools_used,
        provider=answer.provider,
        suggested_goal_ids=ctx.suggested_goal_ids,
        fallback_reason=fallback_reason,
        model_seconds=model_seconds,
    )


# --- The jobs' questions to the coach: the configured provider, the offline coach when it fails ---


def coach_daily_insight(
    *, facts: dict, summary: dict, provider: CoachProvider | None = None
) -> tuple[InsightDraft, str]:
    """Today's insight + recommendation from the user's numbers, and the fallback reason ("" if none)."""
    provider = provider or coach_provider_get()
    try:
        draft, reason = provider.daily_insight(facts=facts, summary=summary), ""
    except CoachUnavailableError as exc:
        logger.warning("coach provider %s failed on a daily insight (%s); writing it offline", provider.name, exc)
        draft, reason = OfflineCoach().daily_insight(facts=facts, summary=summary), exc.reason
    draft.title, draft.body = redact_pii(draft.title)[:200], redact_pii(draft.body)
    draft.recommendation = redact_pii(draft.recommendation)
    return draft, reason


def coach_retention_action(
    *, facts: dict, churn: dict, goals: list[dict], allowed: list[str], provider: CoachProvider | None = None
) -> tuple[RetentionProposal, str]:
    """One retention action among `allowed` fitted to the churn drivers, and the fallback reason."""
    provider = provider or coach_provider_get()
    try:
        proposal, reason = provider.retention_action(facts=facts, churn=churn, goals=goals, allowed=allowed), ""
    except CoachUnavailableError as exc:
        logger.warning("coach provider %s failed on a retention action (%s); choosing offline", provider.name, exc)
        proposal = OfflineCoach().retention_action(facts=facts, churn=churn, goals=goals, allowed=allowed)
        reason = exc.reason
    proposal.title, proposal.body = redact_pii(proposal.title)[:200], redact_pii(proposal.body)
    proposal.recommendation = redact_pii(proposal.recommendation)
    return proposal, reason
