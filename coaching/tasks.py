from celery import shared_task

from coaching.services import daily_insights_generate


@shared_task(name="coaching.tasks.daily_insights_job", acks_late=True)
def daily_insights_job() -> dict:
    return daily_insights_generate()
