"""Schemathesis against the served OpenAPI document, through the WSGI app, on
both databases, in a seeded world (nodes, SKUs, stock, a sales channel's,
an admin's and a carrier's token): for every operation, generated requests
never get a 5xx, and every answer is a documented status whose body matches
its schema (error bodies included). Bounded and deterministic: a few
examples per operation, derandomized."""
from __future__ import annotations

import json

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from app import access
from app.fulfilment import intake
from app.web import openapi
from support import world

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
WHO = {(op.method.upper(), op.path): op.who for op in openapi.OPERATIONS}


@pytest.fixture
def tokens(token_for, db):
    """The world, the documents' example order taken, and the three tokens."""
    world(db, {"SH-PD": {"SKU-0001": 10, "SKU-0002": 5}, "HZ-XS": {"SKU-0001": 3}})
    with db.transaction() as s:
        intake.submit(s, access.channel_named(s, "shop"), json.dumps(openapi.ORDER_EXAMPLE).encode())
        carrier = access.create_carrier_token(s, "ly-express")
    return {openapi.CHANNEL: token_for("shop"), openapi.ADMIN: token_for("ops", admin=True),
            openapi.CARRIER: carrier}


@pytest.fixture
def served(app, client):
    """The app, after checking it serves the document the tests are made from."""
    assert client.get(openapi.PATH).get_json() == DOCUMENT
    # Webhook addresses are not looked up in DNS here (a generated host name would be).
    app.config["LUYUE"].webhook_allow_private = True
    return app


# Loaded when the tests are collected (one test per operation), before any
# app exists; each case is sent to its database's app through WSGI.
DOCUMENT = openapi.document()
schema = schemathesis.openapi.from_dict(DOCUMENT)


@schema.parametrize()
@settings(max_examples=15, derandomize=True, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
def test_every_operation_answers_what_it_documents_and_never_a_server_error(case, served, tokens):
    # Also sent with a method the path does not take (405): the channel's token.
    who = WHO.get((case.method.upper(), case.operation.path), openapi.CHANNEL)
    case.call_and_validate(app=served, headers={"Authorization": f"Bearer {tokens[who]}"}, checks=CHECKS)
