"""`manage.py coach_link <userId>`: print a link that opens the coaching page as that user."""

from __future__ import annotations

import os

from django.core.management.base import BaseCommand, CommandError

from webapp.links import COACH_LINK_MINUTES_DEFAULT, COACH_LINK_MINUTES_MAX, CoachLinkError, coach_link_build


def default_base_url() -> str:
    # Where `make run` serves the CRM (gunicorn binds PORT, default 5000).
    return f"http://127.0.0.1:{os.environ.get('PORT') or '5000'}"


class Command(BaseCommand):
    help = (
        "Print a link to /coach/ with a short-lived end-user token for USER_ID in the URL fragment "
        "(for local use; the app opens the page with its own token)."
    )

    def add_arguments(self, parser):
        parser.add_argument("user_id", help="The CRM user id (e.g. demo_000003).")
        parser.add_argument(
            "--base-url",
            default=None,
            help="Where the CRM is served (default: http://127.0.0.1:$PORT, PORT defaulting to 5000 as in `make run`).",
        )
        parser.add_argument(
            "--minutes",
            type=int,
            default=COACH_LINK_MINUTES_DEFAULT,
            help=f"How long the link works (default {COACH_LINK_MINUTES_DEFAULT}, at most {COACH_LINK_MINUTES_MAX}).",
        )

    def handle(self, *args, user_id: str, base_url: str | None, minutes: int, **options):
        try:
            link = coach_link_build(user_id=user_id, base_url=base_url or default_base_url(), minutes=minutes)
        except CoachLinkError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(link)
        self.stderr.write(f"The link works for {minutes} minutes; anyone holding it can act as {user_id}.")
