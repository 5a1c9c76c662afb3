from celery import shared_task
from django.db import connection


@shared_task(name="yahealthy_crm.ping", ignore_result=False)  # the one result anyone reads
def ping() -> dict:
    """Round trip through broker, worker and database; used by the end-to-end test and operators."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
        row = cursor.fetchone()
    return {"pong": True, "pgvector": row[0] if row else None}
