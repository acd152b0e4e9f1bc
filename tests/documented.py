"""Answers checked against the OpenAPI document: the status is one the
operation documents and the body validates against its model (the error body
for a refusal). Imported as `documented` by any test folder."""
from __future__ import annotations

import re

from app.web import api_documents
from app.web.openapi import OPERATIONS, every_refusal


def _template(rule: str) -> str:
    return re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule.removeprefix("/api/v1"))


def conforms(app, response) -> dict:
    """The answer's body (JSON) after checking it against the document."""
    request = response.request
    rule, _ = app.url_map.bind("localhost").match(request.path, method=request.method, return_rule=True)
    path, method = _template(rule.rule), request.method.lower()
    op = next(o for o in OPERATIONS if (o.path, o.method) == (path, method))
    status = response.status_code
    assert status in op.answers or status in every_refusal(op), \
        f"{method.upper()} {path} answered {status}, which it does not document"
    if status in op.answers:
        model = op.answers[status]
        if isinstance(model, str):
            assert response.mimetype == model
            return {}
        model.model_validate_json(response.get_data())
    else:
        api_documents.ErrorBody.model_validate_json(response.get_data())
    return response.get_json()

