from celery import shared_task

from profiles.services import churn_retention_run


@shared_task(name="profiles.tasks.weekly_churn_assessment_job", acks_late=True)
def weekly_churn_assessment_job() -> dict:
    return churn_retention_run()
