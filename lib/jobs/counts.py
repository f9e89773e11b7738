"""Counts of the job table cheap enough for every scrape and page view.

`snapshot` never scans the job table:

- jobs per kind and status: one statement counting each (kind, status)
  pair through the ``(kind, status)`` index, stopping at `EXACT_LIMIT`
  rows a pair; a pair past it is estimated by the planner from the
  statistics ANALYZE keeps (``EXPLAIN``; migration 0009's multivariate
  statistics on kind and status) where the database has estimates, and
  counted exactly where it has not (SQLite, for small databases);
- the ready queue's depth, counted the same way (up to `EXACT_LIMIT`);
- the oldest ready job: the first of each kind of ready job in id order,
  through the partial indexes the claim uses;
- live and lost workers, when the ``worker`` table exists.

Kinds are grouped into sections by `jobs.kinds`. A snapshot is kept for
`CACHE_SECONDS` per database: scrapes and page views in between cost
nothing.
"""

__all__ = ["CACHE_SECONDS", "EXACT_LIMIT", "Snapshot", "snapshot"]

import json
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Optional

from storm.expr import Alias, Count, Select

from jobs.database import database_now, dialect
from jobs.interfaces.job import JobStatus
from jobs.kinds import NO_SECTION, distinct_kinds, sections_of_kinds
from jobs.model import workers
from jobs.model.job import Job, ready_condition, ready_kinds

EXACT_LIMIT = 10000
CACHE_SECONDS = 5.0
STATUSES = list(JobStatus.items)


@dataclass
class Snapshot:
    """The counts at one instant.

    :ivar by_kind: ``{(kind or None, JobStatus): count}``.
    :ivar estimated: the pairs of `by_kind` that are estimates.
    :ivar sections: ``{kind: section name}``.
    :ivar ready: ready jobs (at most `EXACT_LIMIT` + 1: "more than").
    :ivar oldest_ready_age: seconds the oldest ready job has waited, or
        None when none is ready.
    :ivar oldest_ready_id: its id.
    :ivar workers: ``{"live": n, "lost": n}``.
    :ivar taken: the database's time of the snapshot.
    """

    by_kind: dict = field(default_factory=dict)
    estimated: set = field(default_factory=set)
    sections: dict = field(default_factory=dict)
    ready: int = 0
    oldest_ready_age: Optional[float] = None
    oldest_ready_id: Optional[int] = None
    workers: Optional[dict] = None
    taken: object = None

    def by_section(self):
        """``{(section, JobStatus): count}``."""
        counts = defaultdict(int)
        for (kind, status), count in self.by_kind.items():
            counts[(self.sections.get(kind, NO_SECTION), status)] += count
        return dict(counts)

    def totals(self):
        """``{JobStatus: count}``."""
        counts = defaultdict(int)
        for (_, status), count in self.by_kind.items():
            counts[status] += count
        return dict(counts)


def _capped(select, limit):
    """SQL counting the rows of `select`, at most `limit` + 1."""
    select.limit = limit + 1
    return Select(Count(), tables=Alias(select, "capped"))


def count_pairs(store, kinds, limit):
    """``{(kind, status): count}``, each at most `limit` + 1 (None: no
    cap), for every kind of `kinds` (None for rows without one) and
    every status, in one statement; pairs with no job are left out."""
    parts, params, pairs = [], [], []
    for kind in kinds:
        condition = "kind IS NULL" if kind is None else "kind = ?"
        for status in STATUSES:
            if limit is None:
                parts.append("(SELECT count(*) FROM job WHERE %s AND"
                             " status = %d)" % (condition, status.value))
            else:
                parts.append(
                    "(SELECT count(*) FROM (SELECT 1 FROM job WHERE %s AND"
                    " status = %d LIMIT %d) capped)"
                    % (condition, status.value, limit + 1))
            if kind is not None:
                params.append(kind)
            pairs.append((kind, status))
    if not parts:
        return {}
    row = store.execute("SELECT " + ", ".join(parts), params).get_one()
    return {pair: count for pair, count in zip(pairs, row) if count}


def estimate(store, kind, status):
    """The planner's estimate of the jobs of (`kind`, `status`)."""
    if kind is None:
        sql, params = "kind IS NULL", (status.value,)
    else:
        sql, params = "kind = ?", (kind, status.value)
    plan = store.execute(
        "EXPLAIN (FORMAT JSON) SELECT 1 FROM job WHERE %s AND status = ?"
        % sql, params).get_one()[0]
    if isinstance(plan, str):
        plan = json.loads(plan)
    return int(plan[0]["Plan"]["Plan Rows"])


def take(store, config):
    """A new `Snapshot` of `store`'s database (see the module)."""
    exact = not dialect(store).row_estimates
    limit = None if exact else EXACT_LIMIT
    kinds = distinct_kinds(store)
    if store.find(Job.id, Job.kind == None).any() is not None:  # noqa: E711
        kinds.append(None)
    snap = Snapshot(taken=database_now(store))
    snap.by_kind = count_pairs(store, kinds, limit)
    for pair, count in list(snap.by_kind.items()):
        if limit is not None and count > limit:
            snap.by_kind[pair] = max(count, estimate(store, *pair))
            snap.estimated.add(pair)
    snap.sections = sections_of_kinds(store, config)
    snap.ready = store.execute(_capped(
        Select(Job.id, where=ready_condition()), EXACT_LIMIT)).get_one()[0]
    _oldest_ready(store, snap)
    snap.workers = _workers(store, config, snap.taken)
    return snap


def _oldest_ready(store, snap):
    """The ready job first in id order, of each kind of ready job, and
    how long it has been ready."""
    waiting, orphaned = ready_kinds()
    found = []
    for condition, since in (
            (waiting, (Job.date_created, Job.scheduled_start,
                       Job.date_finished)),
            (orphaned, (Job.lease_expires,))):
        row = store.find((Job.id,) + since, condition).order_by(
            Job.status, Job.id)[:1].one()
        if row is not None:
            found.append((row[0], max(value for value in row[1:]
                                      if value is not None)))
    if found:
        job_id, since = min(found)
        snap.oldest_ready_id = job_id
        snap.oldest_ready_age = max(
            0.0, (snap.taken - since).total_seconds())


def _workers(store, config, now):
    """The number of live and lost runners in the ``worker`` table (a
    stopping runner is live), by `jobs.model.workers.state`."""
    beats = config.workers.lost_after_beats
    found = {"live": 0, "lost": 0}
    for row in workers.find(store):
        lost = workers.state(row, now, beats) == "lost"
        found["lost" if lost else "live"] += 1
    return found


_cache = {}
_lock = threading.Lock()


def snapshot(store, config, max_age=CACHE_SECONDS):
    """The `Snapshot` of `store`'s database, taken at most `max_age`
    seconds ago (taken now if older)."""
    key = str(store.get_database())
    now = time.monotonic()
    with _lock:
        cached = _cache.get(key)
        if cached is not None and now - cached[0] < max_age:
            return cached[1]
    snap = take(store, config)
    with _lock:
        _cache[key] = (time.monotonic(), snap)
    return snap


def forget():
    """Drop the kept snapshots (tests)."""
    with _lock:
        _cache.clear()
