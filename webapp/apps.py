from django.apps import AppConfig


class WebappConfig(AppConfig):
    """The end user's pages (`/coach/`): an entry point like the API, with no models of its own."""

    name = "webapp"
    verbose_name = "End-user pages"
