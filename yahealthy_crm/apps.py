from django.apps import AppConfig
from django.utils.module_loading import autodiscover_modules


class PlatformConfig(AppConfig):
    name = "yahealthy_crm"
    verbose_name = "Platform (API keys, cache)"

    def ready(self) -> None:
        # Register every app's Celery tasks in every process (web too, not only the worker), so
        # services can enqueue by name (yahealthy_crm/queue.py) without importing the task modules
        # above them; the same discovery Django's admin uses for admin.py.
        autodiscover_modules("tasks")
