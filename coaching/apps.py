from django.apps import AppConfig

from profiles.signals import ai_consent_withdrawn


class CoachingConfig(AppConfig):
    name = "coaching"

    def ready(self) -> None:
        # Embeddings go when AI consent goes, in the same transaction (coaching/privacy.py says why).
        from coaching.privacy import ai_embeddings_drop_on_withdrawal  # imports models: registry ready only now

        ai_consent_withdrawn.connect(ai_embeddings_drop_on_withdrawal, dispatch_uid="coaching.ai_embeddings_drop")
