"""Schemathesis against a live server: every operation of /api/schema, all default checks, zero failures.

The schema is read from the running server (pytest-django's `live_server`), so endpoints added later
are fuzzed without changing this file. Each operation runs the examples, coverage and fuzzing phases
with a fixed seed (derandomized) and a bounded number of examples, positive and negative data, with
valid credentials of its security scheme: a service API key, an end user's JWT or a staff session
for the REST API (`CALLERS`: the service key fuzzes every operation, the others a smaller run),
X-Admin-Key for the job endpoints, and a Standard Webhooks signature made over the exact bytes sent
for the webhooks. `docs/api.md` ("Fuzzing") says how to run it alone and with more examples.

What a static schema cannot state is handled in the open here, each case named:
- dates judged against today (a goal's `target_date` not in the past, an event's `occurredAt` at most
  5 minutes ahead): generated positive values are moved into the allowed range before sending;
- a goal update event's `metric` is checked against the stored goal's type (the schema states the
  rule in words; creations state it in their schema, one branch per goal type): a positive update
  refused with exactly that error is not counted against `positive_data_acceptance` (every other
  check still runs);
- state: a list cursor is valid only as the server issued it, GDPR erase targets a throwaway user
  made just before, an Idempotency-Key is made unique per request, and an event for an erased user
  (410), for a goal the CRM does not have (422 `entity_not_found`) or whose default key (entityType,
  externalId, operation, occurredAt: sent without Idempotency-Key) came before with another body (422
  `idempotency_key_reused`) is a state answer, not a schema mismatch.
"""

from __future__ import annotations

import datetime as dt
import os
import uuid
from typing import Any

import pytest
import requests
import schemathesis
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone
from schemathesis.core.result import Ok
from schemathesis.pytest.lazy import get_all_tests
from schemathesis.specs.openapi.checks import positive_data_acceptance
from standardwebhooks import Webhook

from coaching.models import JobRun
from compliance.models import AuditLog
from sync.models import SyncEvent, SyncStatus
from tests.factories import FoodLogFactory, GoalFactory, ProfileFactory
from tests.support import make_jwt
from tests.sync.support import WEBHOOK_SECRET
from yahealthy_crm.actors import ActorType
from yahealthy_crm.models import ServiceApiKey

pytestmark = pytest.mark.django_db(transaction=True)

ADMIN_KEY = "fuzz-admin-key-0123456789"
EXAMPLE_USER = "user_123"  # the user id of the schema's examples
# Examples per operation and generation mode; FUZZ_MAX_EXAMPLES=100 for a deeper run (about 4 minutes).
MAX_EXAMPLES = int(os.environ.get("FUZZ_MAX_EXAMPLES", "30"))
SEED = 14
# Refusals that are as good as the defaults for invalid data: a batch over 500 events is 413, and an
# erased user's event is 410 whatever it holds (nothing of it is stored).
NEGATIVE_REJECTION_STATUSES = [
    *("400", "401", "403", "404", "405", "406", "409", "410", "413", "415", "422", "428", "429"),
]
WEBHOOK_PATHS = ("/api/crm/webhooks/",)
JOB_PATHS = ("/api/crm/jobs/",)


@pytest.fixture
def fuzz_world(settings, live_server, celery_eager):
    """Credentials for every scheme and one user with data, the schema examples' `user_123`. Celery
    runs in process, so the jobs and sweeps the fuzzer starts run here and leave no message behind."""
    settings.CRM_WEBHOOK_SECRET = WEBHOOK_SECRET
    settings.CRM_ADMIN_KEY = ADMIN_KEY
    settings.APP_WEBHOOK_URL = ""
    settings.COACH_PROVIDER = "offline"
    profile = ProfileFactory(user_id=EXAMPLE_USER)
    GoalFactory(user=profile)
    FoodLogFactory(user=profile)
    _, service_key = ServiceApiKey.objects.create_key(name="fuzzer")
    staff = get_user_model().objects.create_superuser(username="fuzz-staff", password=None, email="")
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(staff)
    browser.get("/admin/")  # sets the CSRF cookie
    return {
        "service": {"Authorization": f"Api-Key {service_key}"},
        "user": {"Authorization": f"Bearer {make_jwt(EXAMPLE_USER, expires_in_s=3600)}"},
        "staff": {
            "Cookie": f"sessionid={browser.cookies['sessionid'].value}; csrftoken={browser.cookies['csrftoken'].value}",
            "X-CSRFToken": browser.cookies["csrftoken"].value,
        },
    }


def _schema(live_server, max_examples: int):
    config = schemathesis.Config.from_dict(
        {
            "seed": SEED,
            # No NUL characters: the server refuses them in any key, and OpenAPI 3.0 cannot say so for
            # the keys a webhook payload may add (no `propertyNames`); test_bad_input.py sends them.
            "generation": {"deterministic": True, "max-examples": max_examples, "allow-x00": False},
            "checks": {"negative_data_rejection": {"expected-statuses": NEGATIVE_REJECTION_STATUSES}},
        }
    )
    return schemathesis.openapi.from_url(f"{live_server.url}/api/schema?format=json", config=config)


SIGN_ME = "sign-me"
WEBHOOK_CREDENTIALS = {"webhook-id": SIGN_ME, "webhook-timestamp": SIGN_ME, "webhook-signature": SIGN_ME}


class WebhookSigningSession(requests.Session):
    """Signs each webhook request over the bytes that go on the wire (Standard Webhooks) when it
    carries the valid-credentials placeholders: a check that drops or replaces them (missing header,
    invalid credentials) sends what it made, unsigned."""

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        body = request.body or b""
        try:
            text = body.decode("utf-8") if isinstance(body, bytes) else body
        except UnicodeDecodeError:
            text = None  # not UTF-8: refused before the signature is checked
        if text is not None and all(request.headers.get(name) == SIGN_ME for name in WEBHOOK_CREDENTIALS):
            msg_id, now = f"msg_{uuid.uuid4().hex}", timezone.now()
            request.headers["webhook-id"] = msg_id
            request.headers["webhook-timestamp"] = str(int(now.timestamp()))
            request.headers["webhook-signature"] = Webhook(WEBHOOK_SECRET).sign(msg_id, now, text)
        return super().send(request, **kwargs)


def _is_positive(case) -> bool:
    return case.meta is not None and case.meta.generation.mode.is_positive


def _dates_into_range(case) -> None:
    """Positive values of the rules judged against today: a target date from today on, an occurredAt
    not after now (the schema states both in words; no static schema can state them)."""
    body = case.body if isinstance(case.body, dict) else None
    if not _is_positive(case) or body is None:
        return
    today = timezone.localdate()
    target = body.get("target_date")
    if isinstance(target, str):
        try:
            if dt.date.fromisoformat(target) < today:
                body["target_date"] = today.isoformat()
        except ValueError:
            pass
    occurred = body.get("occurredAt")
    if isinstance(occurred, str):
        try:
            if dt.datetime.fromisoformat(occurred.replace("Z", "+00:00")) > timezone.now():
                body["occurredAt"] = timezone.now().isoformat()
        except ValueError:
            pass


def _throwaway_user(case) -> None:
    """GDPR erase of a valid id (or of the examples' user) targets a user made for it: erasing is for
    good, and the other operations keep their data to work on."""
    erase = case.method.upper() == "DELETE" and case.path == "/api/crm/users/{user_id}"
    if erase and (_is_positive(case) or case.path_parameters.get("user_id") == EXAMPLE_USER):
        user_id = f"erase_me_{uuid.uuid4().hex[:12]}"
        ProfileFactory(user_id=user_id)
        case.path_parameters["user_id"] = user_id


def _unique_idempotency_key(case) -> None:
    """A key names one event: reusing one for another body is refused (422) by design."""
    headers = case.headers or {}
    key = headers.get("Idempotency-Key")
    if isinstance(key, str) and len(key) <= 255:
        headers["Idempotency-Key"] = f"fuzz-{uuid.uuid4().hex}"


def _error(response) -> dict:
    try:
        body = response.json()
    except ValueError:
        return {}
    if not isinstance(body, dict) or body.get("status") != "error" or not isinstance(body.get("error"), dict):
        return {}
    return body["error"]


def _refused_by_a_rule_in_words(case, response) -> bool:
    """A positive case refused only for a rule the schema states in words, or for the server's state."""
    error = _error(response)
    code, details = error.get("code"), error.get("details") or {}
    if response.status_code == 410 and code == "user_erased":
        return True  # the fuzzer erased this id earlier (state)
    if response.status_code == 422 and code == "entity_not_found":
        return True  # a goal update/progress for a goal the CRM does not have (state)
    if response.status_code == 422 and code == "idempotency_key_reused":
        return True  # without Idempotency-Key the event's identity is its default key (state)
    if code == "validation_error" and set(details) == {"cursor"}:
        return True  # a cursor is an opaque token only the server issues (state)
    payload_errors = details.get("payload") if isinstance(details, dict) else None
    goal_update = isinstance(case.body, dict) and (case.body.get("entityType"), case.body.get("operation")) == (
        "goal",
        "update",
    )
    return (
        goal_update
        and code == "validation_error"
        and set(details) == {"payload"}
        and isinstance(payload_errors, dict)
        and set(payload_errors) == {"metric"}
    )  # a goal update's metric is checked against the stored goal's type (state)


def _credentials(case, world: dict, caller: str) -> dict:
    if case.path.startswith(JOB_PATHS):
        return {"X-Admin-Key": ADMIN_KEY}
    if case.path.startswith(WEBHOOK_PATHS):
        return dict(WEBHOOK_CREDENTIALS)
    return dict(world[caller])


def _run_case(case, world: dict, caller: str) -> None:
    headers = _credentials(case, world, caller)
    if caller == "staff" and case.headers:
        case.headers.pop("Authorization", None)  # a generated API credential; the session is the staff's
    _dates_into_range(case)
    _throwaway_user(case)
    _unique_idempotency_key(case)
    session = WebhookSigningSession()
    response = case.call(session=session, headers=headers)
    excluded = []
    if _is_positive(case) and _refused_by_a_rule_in_words(case, response):
        excluded.append(positive_data_acceptance)
    case.validate_response(
        response,
        headers=headers,
        excluded_checks=excluded,
        transport_kwargs={"session": session, "headers": headers},
    )


def _fuzz(live_server, world: dict, caller: str, *, paths: tuple[str, ...], max_examples: int) -> list[str]:
    """Run every operation under `paths` through Schemathesis's phases; the failures, by operation.

    Drives Schemathesis's own per-operation test builder (what `schema.parametrize()` runs) in one
    pytest test: its pytest plugin does not work with pytest 9's node ids."""

    def check_case(case):
        _run_case(case, world, caller)

    failures = []
    operations = 0
    tests = get_all_tests(
        schema=_schema(live_server, max_examples), test_func=check_case, settings=None, given_kwargs={}
    )
    for result in tests:
        if not isinstance(result, Ok):
            failures.append(f"schema error: {result.err()}")
            continue
        operation, operation_test = result.ok()
        if not operation.path.startswith(paths):
            continue
        operations += 1
        try:
            operation_test()
        except (AssertionError, BaseExceptionGroup) as exc:  # Schemathesis' FailureGroup: report every operation
            failures.append(f"{operation.label}:\n{exc}")
    assert operations, "no operation was fuzzed"
    return failures


# (caller of the REST API, the operations fuzzed, examples per operation and mode). The service key
# may act on any user: it fuzzes everything; an end user's JWT and a staff session fuzz the user
# endpoints in a smaller run (the job endpoints and webhooks have their own credentials anyway).
CALLER_ACTORS = {"service": ActorType.APP, "user": ActorType.USER, "staff": ActorType.STAFF}
CALLERS = [
    ("service", ("/api/crm/",), MAX_EXAMPLES),
    ("user", ("/api/crm/users",), max(MAX_EXAMPLES // 4, 2)),
    ("staff", ("/api/crm/users",), max(MAX_EXAMPLES // 4, 2)),
]


@pytest.mark.parametrize(("caller", "paths", "max_examples"), CALLERS, ids=[c[0] for c in CALLERS])
def test_every_operation_conforms_to_the_schema(live_server, fuzz_world, caller, paths, max_examples):
    failures = _fuzz(live_server, fuzz_world, caller, paths=paths, max_examples=max_examples)
    assert not failures, "\n\n".join(failures)
    # The credentials worked: some generated writes went through as this caller (not all 401s).
    assert AuditLog.objects.filter(actor_type=CALLER_ACTORS[caller]).exists()
    if caller == "service":
        assert SyncEvent.objects.filter(status=SyncStatus.SUCCESS).exists()  # signed webhooks accepted
        assert JobRun.objects.exists()  # the admin key started jobs
