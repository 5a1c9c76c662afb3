"""OpenAPI 3 schema and offline Swagger UI."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db

OPERATIONS = {
    ("/api/crm/users", "post"),
    ("/api/crm/users/{user_id}", "get"),
    ("/api/crm/users/{user_id}", "put"),
    ("/api/crm/users/{user_id}", "delete"),
    ("/api/crm/users/{user_id}/export", "get"),
    ("/api/crm/users/{user_id}/goals", "get"),
    ("/api/crm/users/{user_id}/goals", "post"),
    ("/api/crm/goals/{goal_id}", "put"),
    ("/api/crm/users/{user_id}/activities", "get"),
    ("/api/crm/users/{user_id}/nutrition-snapshot", "get"),
    ("/api/crm/users/{user_id}/metrics", "get"),
    ("/api/crm/churn-risk", "get"),
    ("/api/crm/audit-log/{user_id}", "get"),
}


@pytest.fixture
def schema(anon_client):
    response = anon_client.get("/api/schema", {"format": "json"})
    assert response.status_code == 200
    return response.json()


def test_schema_declares_the_three_auth_schemes(schema):
    schemes = schema["components"]["securitySchemes"]
    assert schemes["ServiceApiKey"] == {
        "type": "apiKey",
        "in": "header",
        "name": "Authorization",
        "description": schemes["ServiceApiKey"]["description"],
    }
    assert schemes["UserJwt"]["scheme"] == "bearer"
    assert schemes["UserJwt"]["bearerFormat"] == "JWT"
    assert schemes["StaffSession"]["in"] == "cookie"


def test_every_endpoint_has_auth_schemas_and_an_example(schema):
    found = {
        (path, method) for path, item in schema["paths"].items() for method in item if (path, method) in OPERATIONS
    }
    assert found == OPERATIONS
    for path, method in OPERATIONS:
        operation = schema["paths"][path][method]
        assert {name for entry in operation["security"] for name in entry} == {
            "ServiceApiKey",
            "UserJwt",
            "StaffSession",
        }, (path, method)
        examples = [
            content.get("examples")
            for response in operation["responses"].values()
            for content in response.get("content", {}).values()
        ] + [content.get("examples") for content in operation.get("requestBody", {}).get("content", {}).values()]
        assert any(examples), (path, method)
        success = next(code for code in operation["responses"] if code.startswith("2"))
        if success != "204":
            assert operation["responses"][success]["content"]["application/json"]["schema"], (path, method)
        assert "401" in operation["responses"], (path, method)
        if method in ("post", "put"):
            assert operation["requestBody"]["content"]["application/json"]["schema"], (path, method)


def test_swagger_ui_is_served_offline(anon_client):
    response = anon_client.get("/api/docs")
    assert response.status_code == 200
    html = response.content.decode()
    assert "swagger-ui" in html
    assert "cdn.jsdelivr.net" not in html
    assert "unpkg.com" not in html
