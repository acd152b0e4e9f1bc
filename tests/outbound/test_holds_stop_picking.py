"""A fulfilment on hold is not picked until the hold is released."""
from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from app import access
from app.fulfilment import hold, intake, pick
from app.fulfilment.errors import Refusal
from app.models import Order, User
from support import order_body, world


def test_a_held_fulfilment_waits_off_the_pick_lists_until_released(db):
    world(db, {"SH-PD": {"SKU-A": 5}})
    with db.transaction() as s:
        access.create_user(s, "P001", "拣货员", "picker", "1234", "SH-PD")
        intake.submit(s, access.channel_named(s, "shop"), json.dumps(order_body("H-1", [("SKU-A", 1)])).encode())
    with db.transaction() as s:
        f = s.scalar(select(Order).where(Order.external_id == "H-1")).fulfilments[0]
        hold.place_hold(s, f, "address check", "L001")
        picker = s.scalar(select(User).where(User.code == "P001"))
        assert pick.waiting(s, picker.node_id) == 0
        with pytest.raises(Refusal) as nothing:
            pick.claim_next(s, picker)
        assert nothing.value.key == "nothing_to_pick"
        hold.release_hold(s, f, "L001")
    with db.transaction() as s:
        picker = s.scalar(select(User).where(User.code == "P001"))
        assert pick.waiting(s, picker.node_id) == 1
        pl = pick.claim_next(s, picker)
        assert [slot.fulfilment.order.external_id for slot in pl.orders] == ["H-1"]
