"""Signals of the profiles app: how layers above learn of a profile change inside its transaction.

`ai_consent_withdrawn` is sent by every service that turns AI consent off (`profile_update` for
REST, admin and the coach; `profile_fields_apply_from_app` for single and batch app events), inside
the transaction of the change. The data it stops (embeddings of activities and coaching sessions)
lives in apps above profiles, which profiles must not import (docs/architecture.md "Layers"); the
one receiver is `coaching.privacy.ai_embeddings_drop_on_withdrawal`, connected in
`coaching.apps.CoachingConfig.ready`, so the drop commits or rolls back with the withdrawal.
"""

from __future__ import annotations

from django.dispatch import Signal

# Sent with `user_id` (the app's user id), inside the withdrawing transaction.
ai_consent_withdrawn = Signal()


def ai_consent_withdrawn_send(*, user_id: str) -> None:
    """Tell the receivers (same transaction) that `user_id` withdrew AI consent; a receiver's error
    propagates and rolls the withdrawal back, so consent is never off while embeddings remain."""
    ai_consent_withdrawn.send(sender="profiles", user_id=user_id)
