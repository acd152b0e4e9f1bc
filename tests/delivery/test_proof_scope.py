"""A customer's doorstep photo is for the leads of the node that sent the
parcel (and admins), not for a lead of another node."""
from __future__ import annotations

from sqlalchemy import select
from test_rider import Phone, login, parcel_id, same_city

from app.models import Node, Role, User
from conftest import PIN_HASH


def test_a_proof_photo_is_shown_to_its_nodes_lead_and_an_admin_only(floor, app):
    with floor.transaction() as s:
        pd = s.scalar(select(Node.id).where(Node.code == "SH-PD"))
        s.add_all([User(code="L002", name="浦东组长", role=Role.lead, node_id=pd, pin_hash=PIN_HASH, language="zh"),
                   User(code="A001", name="管理员", role=Role.admin, node_id=pd, pin_hash=PIN_HASH, language="zh")])
    rider = app.test_client()
    login(rider, "R001")
    number = same_city(floor, "S-P1")  # sent from SH-STORE
    phone = Phone(rider)
    phone.pickup(number)
    pid = parcel_id(floor, number)
    assert phone.photo(pid, b"\xff\xd8\xff\xe0" + b"\0" * 2000).status_code == 200

    for badge, shown in (("L001", True), ("A001", True), ("L002", False)):
        lead = app.test_client()
        login(lead, badge)
        with lead.get(f"/ride/proofs/{pid}") as proof:
            if shown:
                assert proof.status_code == 200 and proof.data[:3] == b"\xff\xd8\xff", badge
            else:
                assert b'data-refusal="not_found"' in proof.data and b"\xff\xd8\xff" not in proof.data, badge
