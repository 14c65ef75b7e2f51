"""Snapshots of a supervision tree, as data and as text a person reads at a glance."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from supervision._actor import ExitReason
from supervision._mailbox import MailboxStatistics


@dataclass(frozen=True, slots=True)
class TreeNode:
    """One actor or supervisor in a snapshot.

    ``state`` is one of ``starting``, ``running``, ``restarting``, ``stopping``,
    ``stopped`` or ``failed``; ``stuck`` marks an actor that did not stop within
    its shutdown timeout and was abandoned.
    """

    name: str
    kind: str
    state: str
    restarts: int
    last_failure: ExitReason | None
    mailbox: MailboxStatistics | None
    children: tuple[TreeNode, ...] = ()
    restart_latency_s: float | None = None
    stuck: bool = False

    def as_dict(self) -> dict[str, Any]:
        mailbox = self.mailbox
        return {
            "name": self.name,
            "kind": self.kind,
            "state": self.state,
            "restarts": self.restarts,
            "last_failure": self.last_failure.as_dict() if self.last_failure else None,
            "mailbox": None
            if mailbox is None
            else {
                "size": mailbox.size,
                "capacity": mailbox.capacity,
                "high_water": mailbox.high_water,
                "dropped": mailbox.dropped,
                "rejected": mailbox.rejected,
                "blocked_puts": mailbox.blocked_puts,
                "policy": mailbox.policy,
            },
            "restart_latency_ms": None
            if self.restart_latency_s is None
            else round(self.restart_latency_s * 1000, 3),
            "stuck": self.stuck,
            "children": [child.as_dict() for child in self.children],
        }

    def find(self, name: str) -> TreeNode | None:
        """The node named ``name`` in this subtree, or ``None``."""
        if self.name == name:
            return self
        for child in self.children:
            found = child.find(name)
            if found is not None:
                return found
        return None

    def walk(self) -> list[TreeNode]:
        """This node and all below it, depth first in start order."""
        nodes = [self]
        for child in self.children:
            nodes.extend(child.walk())
        return nodes


_BAR_WIDTH = 10


def render_tree(tree: Mapping[str, Any], *, colour: bool = False) -> str:
    """An indented text picture of a tree in its JSON form (``TreeNode.as_dict``).

    One line per node: name, kind, state, restarts, mailbox fill as a bar with
    size/capacity and high-water, and the last failure, if any.
    """
    lines: list[str] = []
    _render(tree, "", "", lines, colour)
    return "\n".join(lines)


_STATE_COLOURS = {"running": "32", "restarting": "33", "starting": "33", "failed": "31"}


def _render(
    node: Mapping[str, Any], lead: str, child_lead: str, lines: list[str], colour: bool
) -> None:
    state = str(node.get("state", "?"))
    shown_state = (
        f"\x1b[{_STATE_COLOURS[state]}m{state}\x1b[0m"
        if colour and state in (_STATE_COLOURS)
        else state
    )
    parts = [f"{lead}{node.get('name', '?')}", f"[{node.get('kind', '?')}]", shown_state]
    restarts = int(node.get("restarts", 0))
    if restarts:
        parts.append(f"restarts={restarts}")
    mailbox = node.get("mailbox")
    if isinstance(mailbox, Mapping):
        size, capacity = int(mailbox.get("size", 0)), max(1, int(mailbox.get("capacity", 1)))
        filled = round(_BAR_WIDTH * min(size, capacity) / capacity)
        bar = "#" * filled + "." * (_BAR_WIDTH - filled)
        parts.append(f"mailbox [{bar}] {size}/{capacity} hw={mailbox.get('high_water', 0)}")
    if node.get("stuck"):
        parts.append("STUCK")
    failure = node.get("last_failure")
    if isinstance(failure, Mapping):
        parts.append(f"last failure: {failure.get('type')}: {failure.get('message')}")
    lines.append("  ".join(parts))
    children = list(node.get("children") or [])
    for index, child in enumerate(children):
        last = index == len(children) - 1
        _render(
            child,
            child_lead + ("└── " if last else "├── "),
            child_lead + ("    " if last else "│   "),
            lines,
            colour,
        )
