"""Which nodes' data a user may see: a lead or a worker their own node, an
admin every node. Every screen and report that reads a node's data asks
this one rule, as a SQL condition (`where`) or about a row (`covers`)."""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, false, true

from app.models import Role, User


@dataclass(frozen=True)
class NodeScope:
    node_id: int | None   # the one node seen; None with `everywhere`
    everywhere: bool = False

    @classmethod
    def of(cls, user: User) -> NodeScope:
        """The user's scope; a user without a node sees no node's data."""
        if user.role == Role.admin:
            return cls(None, everywhere=True)
        return cls(user.node_id)

    def covers(self, node_id: int | None) -> bool:
        return self.everywhere or (self.node_id is not None and node_id == self.node_id)

    def where(self, column) -> ColumnElement[bool]:
        """The condition that keeps rows whose node `column` is in scope."""
        if self.everywhere:
            return true()
        return column == self.node_id if self.node_id is not None else false()

