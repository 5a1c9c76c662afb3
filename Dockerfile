FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 CRM_VAR_DIR=/app/var
WORKDIR /app

COPY pyproject.toml README.md ./
COPY yahealthy_crm ./yahealthy_crm
COPY profiles ./profiles
COPY goals ./goals
COPY activities ./activities
COPY coaching ./coaching
COPY sync ./sync
COPY compliance ./compliance
COPY demo ./demo
COPY webapp ./webapp
COPY manage.py Procfile gunicorn.conf.py ./
RUN pip install --no-cache-dir . \
    && useradd --create-home crm && mkdir -p /app/var && chown crm /app/var
USER crm

EXPOSE 5000
CMD ["gunicorn", "yahealthy_crm.wsgi", "--bind", "0.0.0.0:5000"]
