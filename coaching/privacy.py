"""AI consent and embeddings: the one home of "only users with AI consent are embedded".

Who may be embedded: `profiles.selectors.ai_consent_granted` (an EXISTS on the profile), applied by
every path that computes an embedding: the activity sweep and its backfill
(`activities.services.activities_missing_embedding`, `embeddings_store`), the coaching-session
embedding (`coaching.services.coaching_session_embedding_refresh`, `coaching_sessions_missing_embedding`)
and `manage.py embed_activities`.

What a withdrawal removes: `ai_embeddings_drop` (activities and coaching sessions). It runs in the
withdrawing transaction through the `profiles.signals.ai_consent_withdrawn` signal: consent changes
in profiles (REST, admin, coach, single and batch app events all go through `profile_update` or
`profile_fields_apply_from_app`), and profiles sits below the apps that hold embeddings, so it cannot
call them; the signal lets every entry point get the drop without each one having to remember it.
`ai_embeddings_drop_unconsented` is the set-based safety net (daily job): embeddings of users without
consent that a race or an older version of the code left behind.
"""

from __future__ import annotations

from django.db.models import QuerySet

from activities.models import UserActivity
from activities.services import activity_embeddings_drop
from coaching.models import CoachingSession
from profiles.models import CrmUserProfile
from profiles.selectors import ai_consent_granted


def coaching_sessions_missing_embedding() -> QuerySet[CoachingSession]:
    """Coaching sessions without an embedding, of users with AI consent."""
    return CoachingSession.objects.filter(embedding__isnull=True).filter(ai_consent_granted())


def ai_embeddings_drop(*, user_ids: list[str]) -> dict[str, int]:
    """Remove every embedding of these users (activities and coaching sessions). Call inside the
    transaction that withdraws their AI consent."""
    if not user_ids:
        return {"activities": 0, "sessions": 0}
    return {
        "activities": activity_embeddings_drop(user_ids=user_ids),
        "sessions": CoachingSession.objects.filter(user_id__in=user_ids).update(embedding=None),
    }


def ai_embeddings_drop_on_withdrawal(sender, *, user_id: str, **kwargs) -> None:
    """Receiver of `profiles.signals.ai_consent_withdrawn` (connected in `coaching.apps`)."""
    ai_embeddings_drop(user_ids=[user_id])


def ai_embeddings_drop_unconsented() -> dict[str, int]:
    """Safety net: clear embeddings still held by users without AI consent (two UPDATEs driven by the
    users without consent; rows with an embedding are found through the per-user vector indexes)."""
    unconsented = CrmUserProfile.objects.filter(consent_ai_processing=False).values("user_id")
    return {
        "activities": UserActivity.objects.filter(user_id__in=unconsented, embedding__isnull=False).update(
            embedding=None
        ),
        "sessions": CoachingSession.objects.filter(user_id__in=unconsented, embedding__isnull=False).update(
            embedding=None
        ),
    }
