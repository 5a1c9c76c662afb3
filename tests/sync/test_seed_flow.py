"""The seed's own requests, replayed literally over real HTTP (only our signature and API key added).

CRM_DOCUMENTATION.md, "Integration Tests" steps 1-4 and "Webhook from App to CRM": the bodies are the
seed's, byte for byte; the seed sends no externalId, so the record is named by its Idempotency-Key.
"""

import json
import urllib.error
import urllib.request

import pytest

from activities.models import UserActivity
from tests.sync.support import signed_headers
from yahealthy_crm.models import ServiceApiKey

SEED_STEP_2 = """{
    "entityType": "food_log",
    "operation": "create",
    "userId": "u_test",
    "payload": {"food_name": "Chicken", "calories": 400}
  }"""
SEED_WEBHOOK_EXAMPLE = """{
  "entityType": "food_log",
  "operation": "create",
  "userId": "user_123",
  "externalId": "food_12345",
  "payload": {
    "food_name": "Grilled Chicken",
    "calories": 450,
    "protein": 45,
    "carbs": 50,
    "fat": 12,
    "date": "2025-12-28"
  }
}"""


def _call(base: str, method: str, path: str, body: str | None = None, headers: dict | None = None):
    request = urllib.request.Request(
        base + path,
        data=body.encode() if body is not None else None,
        method=method,
        headers={"Content-Type": "application/json", **(headers or {})},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), json.loads(exc.read())


def _webhook(base: str, body: str, key: str | None):
    headers = signed_headers(body)
    if key is not None:
        headers["Idempotency-Key"] = key
    return _call(base, "POST", "/api/crm/webhooks/app-event", body, headers)


@pytest.fixture
def api_key(transactional_db):
    return {"Authorization": f"Api-Key {ServiceApiKey.objects.create_key(name='app-backend')[1]}"}


def test_the_seed_integration_flow_works_as_written(live_server, api_key, celery_eager):
    base = live_server.url
    # 1. Create user in CRM
    status, _, body = _call(base, "POST", "/api/crm/users", '{"user_id": "u_test", "age": 30}', api_key)
    assert (status, body["data"]["user_id"], body["data"]["age"]) == (201, "u_test", 30)

    # 2. Send food log webhook (no externalId: the Idempotency-Key names the record)
    status, _, first = _webhook(base, SEED_STEP_2, "food_test_1")
    assert status == 202
    assert first["status"] == "accepted"
    assert first["idempotencyKey"] == "food_test_1"
    assert first["result"]["status"] == "success"
    assert first["result"]["data"]["externalId"] == "food_test_1"
    activity = UserActivity.objects.get(user_id="u_test")
    assert (activity.external_id, activity.payload["food_name"], float(activity.calories_kcal)) == (
        "food_test_1",
        "Chicken",
        400.0,
    )
    # the seed's idempotency unit test: the same key twice is accepted twice, applied once
    status, headers, replay = _webhook(base, SEED_STEP_2, "food_test_1")
    assert (status, headers.get("Idempotent-Replayed"), replay) == (202, "true", first)
    assert UserActivity.objects.filter(user_id="u_test").count() == 1

    # 3. Ask AI assistant
    status, _, answer = _call(base, "POST", "/api/crm/users/u_test/ask", '{"message": "How am I doing?"}', api_key)
    assert status == 200
    assert answer["status"] == "success"
    assert "400 kcal" in answer["response"]
    assert "get_user_nutrition_summary" in answer["toolsUsed"]

    # 4. Get insights
    status, _, insights = _call(base, "GET", "/api/crm/users/u_test/insights", headers=api_key)
    assert status == 200
    assert insights["status"] == "success"
    assert isinstance(insights["data"], list)


def test_a_record_created_without_external_id_is_updated_and_deleted_by_its_key(live_server, celery_eager):
    base = live_server.url
    assert _webhook(base, SEED_STEP_2, "food_test_1")[0] == 202
    update = SEED_STEP_2.replace('"create"', '"update"').replace("400", "420")
    update = update.replace('"userId"', '"externalId": "food_test_1", "userId"')
    status, _, body = _webhook(base, update, "food_test_1_update")
    assert (status, body["result"]["data"]["created"]) == (202, False)
    assert float(UserActivity.objects.get(user_id="u_test", external_id="food_test_1").calories_kcal) == 420.0

    delete_without_id = json.dumps({"entityType": "food_log", "operation": "delete", "userId": "u_test"})
    status, _, body = _webhook(base, delete_without_id, "food_test_1_delete")
    assert status == 422
    assert body["error"]["code"] == "validation_error"
    assert "externalId of its create" in body["error"]["details"]["externalId"][0]
    assert UserActivity.objects.filter(user_id="u_test").count() == 1


def test_a_create_without_key_or_external_id_is_named_by_its_signed_message_id(live_server, celery_eager):
    status, _, body = _webhook(live_server.url, SEED_STEP_2, None)
    assert status == 202
    external_id = body["result"]["data"]["externalId"]
    assert external_id.startswith("webhook:msg_")
    assert UserActivity.objects.get(user_id="u_test").external_id == external_id


def test_the_seed_webhook_example_works_as_written(live_server, celery_eager):
    status, _, body = _webhook(live_server.url, SEED_WEBHOOK_EXAMPLE, "food_12345_1703808000")
    assert status == 202
    assert body == {
        "status": "accepted",
        "idempotencyKey": "food_12345_1703808000",
        "result": {"status": "success", "data": body["result"]["data"]},
    }
    data = body["result"]["data"]
    assert (data["externalId"], data["loggedDate"], data["created"]) == ("food_12345", "2025-12-28", True)
