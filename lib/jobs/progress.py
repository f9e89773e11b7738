"""Progress reports: a tree of (current, total, status line) per job.

``job.reportProgress(current, total, status_line=None, group=())`` sets
the node named by `group` (a tuple of names; ``()`` is the job itself).
A parent's current and total are the sums of its children's unless set.
Where the database lets another connection write while the job runs
(PostgreSQL), each report of a running attempt is written at once through
the runner's side connection (`jobs.heartbeat.SideConnection`), in a
transaction of its own: visible to others while the job runs, kept when
the job's own work is rolled back. Otherwise (SQLite, whose running job
holds the only write lock; a group commit, whose transaction holds the job
rows' locks; a job that locked its own row) the tree is written with the
job's outcome.
"""

__all__ = ["ProgressTree", "draw"]

import json


class ProgressTree:
    """The progress of one job, as nested nodes."""

    def __init__(self):
        self.root = {}

    def set(self, current, total, status_line=None, group=()):
        node = self.root
        for name in group:
            node = node.setdefault("children", {}).setdefault(name, {})
        node["current"] = current
        node["total"] = total
        if status_line is not None:
            node["status"] = status_line

    def to_json(self):
        return json.dumps(_summed(self.root), sort_keys=True)


def _summed(node):
    node = dict(node)
    children = {name: _summed(child)
                for name, child in node.get("children", {}).items()}
    if children:
        node["children"] = children
        for key in ("current", "total"):
            if key not in node:
                node[key] = sum(child.get(key, 0) for child in children.values())
    return node


def draw(text, width=30):
    """Progress JSON as indented text bars (for ``jobs show``)."""
    if not text:
        return "(none)"
    lines = []

    def walk(name, node, depth):
        current, total = node.get("current", 0), node.get("total", 0) or 0
        filled = int(width * current / total) if total else 0
        lines.append("%-12s [%s%s] %s/%s %s" % (
            "  " * depth + name, "#" * filled, "." * (width - filled),
            current, total, node.get("status", "")))
        for child_name, child in sorted(node.get("children", {}).items()):
            walk(child_name, child, depth + 1)

    walk("job", json.loads(text), 0)
    return "\n".join(line.rstrip() for line in lines)
