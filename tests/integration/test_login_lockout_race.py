"""Wrong PINs sent at once all count: a burst of guesses locks the badge on
PostgreSQL as it does one at a time, and the right PIN inside or after the
burst does not get in."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from app import access
from app.fulfilment.errors import Refusal
from app.models import User
from racing import key, released_together
from support import PLACES, add_nodes

GUESSES = 40
ROUNDS = 5


@pytest.fixture
def badge(db, monkeypatch):
    import functools

    from werkzeug.security import generate_password_hash
    monkeypatch.setattr(access, "generate_password_hash",
                        functools.partial(generate_password_hash, method="pbkdf2:sha256:1000"))
    add_nodes(db, {"SH-PD": PLACES["SH-PD"]})
    with db.transaction() as s:
        access.create_user(s, "P1", "picker", "picker", "1234", "SH-PD")
    return "P1"


def guess_together(db, pins: list[str]) -> list[str]:
    """Each PIN tried by its own thread, all released together; what each got."""
    def attempt(i: int) -> str:
        with db.transaction() as s:
            return "in" if access.check_login(s, "P1", pins[i]) else "login_failed"
    return [key(answer) for answer in released_together(len(pins), attempt)]


def test_a_burst_of_wrong_pins_locks_the_badge_and_the_right_pin_after_it_is_refused(db, badge):
    for _ in range(ROUNDS):
        answers = guess_together(db, ["9999"] * GUESSES)
        assert answers.count("login_failed") == access.MAX_FAILED_LOGINS
        assert answers.count("login_locked") == GUESSES - access.MAX_FAILED_LOGINS
        with pytest.raises(Refusal) as locked, db.transaction() as s:
            access.check_login(s, "P1", "1234")
        assert locked.value.key == "login_locked"
        with db.transaction() as s:  # a lead sets a new PIN: the lock is lifted for the next round
            user = s.scalar(select(User).where(User.code == "P1"))
            access.create_user(s, "P1", user.name, "picker", "1234", "SH-PD")


def test_the_right_pin_inside_a_burst_gets_in_only_before_the_lock(db, badge):
    for _ in range(ROUNDS):
        answers = guess_together(db, ["9999"] * (GUESSES - 1) + ["1234"])
        if answers[-1] == "in":
            # It came before the fifth wrong PIN and started the count again:
            # never more than twice the limit of wrong PINs were let through.
            assert answers.count("login_failed") <= 2 * access.MAX_FAILED_LOGINS
        else:
            assert answers[-1] == "login_locked"
            assert answers.count("login_failed") == access.MAX_FAILED_LOGINS
        with db.transaction() as s:
            user = s.scalar(select(User).where(User.code == "P1"))
            access.create_user(s, "P1", user.name, "picker", "1234", "SH-PD")


def test_an_unknown_badge_is_counted_and_locked_exactly_like_a_known_one(db, badge):
    def attempts(code: str) -> list[str]:
        answers = []
        for _ in range(access.MAX_FAILED_LOGINS + 1):
            try:
                with db.transaction() as s:
                    answers.append("in" if access.check_login(s, code, "9999") else "login_failed")
            except Refusal as refusal:
                answers.append(refusal.key)
        return answers
    known, unknown = attempts("P1"), attempts("NO-SUCH-BADGE")
    assert known == unknown == ["login_failed"] * access.MAX_FAILED_LOGINS + ["login_locked"]


def test_a_burst_of_guesses_at_an_unknown_badge_locks_it_too(db, badge):
    def attempt(i: int) -> str:
        with db.transaction() as s:
            return "in" if access.check_login(s, "NO-SUCH-BADGE", "9999") else "login_failed"
    answers = [key(answer) for answer in released_together(GUESSES, attempt)]
    assert answers.count("login_failed") == access.MAX_FAILED_LOGINS
    assert answers.count("login_locked") == GUESSES - access.MAX_FAILED_LOGINS
