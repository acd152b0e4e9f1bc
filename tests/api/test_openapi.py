"""The OpenAPI document: served without a token, complete (every /api/v1
route and method), generated from the models the API validates with."""
from __future__ import annotations

import json
import re

from app.fulfilment.intake import OrderRequest
from app.web.openapi import PATH


def served(client) -> dict:
    r = client.get(PATH)
    assert r.status_code == 200 and r.mimetype == "application/json"
    return r.get_json()


def test_the_document_is_openapi_3_1_served_without_a_token_with_a_bearer_scheme(client):
    doc = served(client)
    assert doc["openapi"].startswith("3.1")
    assert doc["components"]["securitySchemes"]["bearer"] == {
        "type": "http", "scheme": "bearer", "description": "luyue token create (see README)"}
    assert doc["security"] == [{"bearer": []}]


def test_every_api_route_and_method_is_in_the_document_and_nothing_else(app, client):
    doc = served(client)
    documented = {(path, method.upper()) for path, ops in doc["paths"].items() for method in ops}
    routes = {(re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule.rule.removeprefix("/api/v1")), method)
              for rule in app.url_map.iter_rules() if rule.rule.startswith("/api/v1/")
              for method in rule.methods - {"HEAD", "OPTIONS"}}
    routes.discard(("/openapi.json", "GET"))  # the document itself
    assert routes - documented == set(), "routes missing from the OpenAPI document"
    assert documented - routes == set(), "documented operations the server does not have"


def test_the_order_body_schema_is_the_one_intake_validates_with(client):
    doc = served(client)
    body = doc["paths"]["/orders"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    schema = doc["components"]["schemas"][body["$ref"].rsplit("/", 1)[1]]
    expected = OrderRequest.model_json_schema(ref_template="#/components/schemas/{model}")
    assert schema["required"] == expected["required"]
    assert schema["properties"] == expected["properties"]


def test_every_refusal_is_documented_with_the_error_body(client):
    doc = served(client)
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            for status, answer in op["responses"].items():
                if int(status) >= 400:
                    assert answer["content"]["application/json"]["schema"] == {
                        "$ref": "#/components/schemas/ErrorBody"}, (method, path, status)
            assert {"401", "503"} <= set(op["responses"]), (method, path)


def test_every_example_body_is_valid_for_its_operation():
    from app.web.openapi import OPERATIONS
    examples = [op for op in OPERATIONS if op.example is not None]
    assert len(examples) >= 7
    for op in examples:
        op.body.model_validate_json(json.dumps(op.example))


def test_docs_api_md_names_every_documented_operation(client):
    from pathlib import Path
    text = (Path(__file__).parents[2] / "docs" / "api.md").read_text(encoding="utf-8")
    missing = [f"{method.upper()} {path}" for path, ops in served(client)["paths"].items() for method in ops
               if f"/api/v1{path}" not in text]
    assert missing == []
