"""The statements that take and give back jobs: the fenced claim, the
record of an attempt's start, a group's row locks, giving back claims
that never started.

The claim takes ready jobs as new attempts; every later statement about
a claimed job — these, and renewing its lease, writing its progress,
recording its outcome (`jobs.model.records`) — is *fenced*: it matches
the row only while it is RUNNING in the claimed attempt
(``attempt_count``). A runner whose job was taken over (its lease
expired: it died, froze or lost its database) therefore changes nothing,
and learns it from the row count.

Each statement exists once, in these modules, and takes plain values (job
ids, attempt numbers, statuses): the runner's `jobs.attempt.Attempt` and
`jobs.outcome.Outcome` are turned into them by the runner.
"""

__all__ = [
    "Claimed",
    "claim",
    "claim_rows",
    "lock",
    "mark_started",
    "release",
]

import os
import socket
from collections import namedtuple
from datetime import timedelta
from functools import partial
from operator import itemgetter

from storm.expr import And, Desc, Or, Select

from jobs.database import clock, dialect, prepared
from jobs.database.stormext import (
    IntArray, compile_expr, database_values, invalidate, raw_session_state,
    session_of)
from jobs.interfaces.job import JobStatus
from jobs.model.fencing import chunks, fenced, fenced_any
from jobs.model.fencing import now as now_sql
from jobs.model import records
from jobs.model.claimsql import (
    claim_sets, claim_statement, completing_statement)
from jobs.model.job import Job, ready_kinds

RUNNING = JobStatus.RUNNING
WAITING = JobStatus.WAITING
_HOST = socket.gethostname()


class Claimed(namedtuple(
        "Claimed", "job_id attempt max_retries cancel_requested lost started"
        " lost_runner job", defaults=(False, None, None))):
    """One job a claim took: its id, the new attempt's number, its
    ``max_retries``, whether a cancel was requested, whether the claim
    took it over from a lost runner (it was RUNNING, its lease expired,
    and that attempt had started: it counts), whether its start is
    recorded already (`mark_started`), who that lost runner was
    (``claimed_by``, or None), and the runnable job when the claimer had
    it loaded already (else None)."""


# (cache_key, limit, lease, started) -> the claim statement and its
# parameters.
_claim_statements = {}


def claim(store, condition, tables, limit, lease_seconds, cache_key=None,
          started=False, limits=None, load=None, only=None,
          completing=None):
    """Claim up to `limit` ready jobs matching `condition`, atomically.

    One statement moves them to RUNNING as a new attempt with a lease of
    `lease_seconds`: on PostgreSQL an ``UPDATE ... FROM (SELECT ... FOR
    NO KEY UPDATE SKIP LOCKED) RETURNING`` (see `jobs.model.locking`), so concurrent claimers get disjoint
    jobs without waiting (each kind of ready job, waiting and orphaned,
    read in its index's order: the cost does not grow with the queue); on
    SQLite a SELECT and an UPDATE inside the transaction's write lock.
    Highest `priority` first, then oldest (lowest id).

    Attempts are counted when they start, not when they are claimed: a
    claim leaves ``date_started`` empty until the runner records the
    job's start (`mark_started`), committed before the job runs. An
    orphan whose lost claim never started is taken over under the same
    attempt number (that attempt never ran: it is not charged); one whose
    attempt started is taken over as a new attempt, and the outcome
    policy decides whether it runs (`jobs.outcome.decide_lost`).

    :param condition: a Storm expression choosing the source's jobs.
    :param tables: the tables `condition` needs besides ``job``.
    :param cache_key: a hashable value standing for `condition`: the
        statement is then compiled once per key, limit and lease
        (compiling it costs more than running it).
    :param started: record every claimed job's start at once (jobs that
        start as soon as the claim commits: a claim of one job, a group,
        a process pool's dispatch).
    :param limits: the section's `jobs.model.limits.Limits`, if any: the
        claim then picks only what they allow.
    :param only: a job id: claim that job only (if ready and allowed);
        `limits` still count every RUNNING job of `condition`.
    :param load: a `jobs.model.lean.ContextJoin`: where the database can
        (``UPDATE ... RETURNING`` in a WITH), the claimed jobs' context
        rows come back with the claim, in its round trip, and each
        `Claimed` carries its loaded job.
    :param completing: a `jobs.model.records.Completion` to record in the
        claim's statement where the database can (PostgreSQL, no limits,
        no `only`); it says afterwards whether it was recorded, and
        whether the statement committed by itself.
    :return: a list of `Claimed`, in claiming order. The caller commits
        to publish the claim.
    """
    if isinstance(lease_seconds, timedelta):
        lease_seconds = lease_seconds.total_seconds()
    if limits is not None:
        rows = limits.claim_rows(store, condition, tables, limit,
                                 lease_seconds, started, only)
    elif only is not None:
        return claim(store, (Job.id == only) & condition, tables, limit,
                     lease_seconds, None, started, None, load)
    elif dialect(store).returning:
        rows = _claim_returning(store, condition, tables, limit,
                                lease_seconds, cache_key, started, load,
                                completing)
    else:
        rows = _claim_select_update(store, condition, tables, limit,
                                    lease_seconds, started)
    # Objects cached before the UPDATE are stale now.
    invalidate(store)
    # Highest priority first, then oldest: two stable sorts, keyed in C.
    rows.sort(key=_BY_ID)
    rows.sort(key=_BY_PRIORITY, reverse=True)
    jobs = {}
    if rows and len(rows[0]) > _CLAIMED_WIDTH:
        jobs = load.jobs([row[_CLAIMED_WIDTH:] for row in rows])
    claimed = []
    for row in rows:
        (job_id, attempt, max_retries, cancel, previous, _, had_started,
         holder) = row[:_CLAIMED_WIDTH]
        lost = previous == RUNNING.value and had_started
        claimed.append(_claimed((
            job_id, attempt, max_retries, bool(cancel), lost, started,
            holder if lost else None, jobs.get(job_id))))
    return claimed


_BY_ID, _BY_PRIORITY = itemgetter(0), itemgetter(5)
# A `Claimed` of its eight values, made without the Python __new__ that
# namedtuple writes (a call a claimed job).
_claimed = partial(tuple.__new__, Claimed)


# The columns of a claim's rows (a context row may follow).
_CLAIMED_WIDTH = 8


def claimer(store):
    """``<host>:<pid>/<session>``: who claims, for ``job.claimed_by``
    (kept with the session's state, where there is one: a claim a job
    asks for it)."""
    pid = os.getpid()
    state = raw_session_state(store)
    if state is None:
        return "%s:%d/%s" % (_HOST, pid, session_of(store))
    known = state.get("claimer")
    if known is None or known[0] != pid:
        known = state["claimer"] = (
            pid, "%s:%d/%s" % (_HOST, pid, session_of(store)))
    return known[1]


def _claim_returning(store, condition, tables, limit, lease_seconds,
                     cache_key, started, load, completing):
    key = None
    if cache_key is not None and clock.frozen_at is None:
        key = (cache_key, limit, lease_seconds, started, load,
               completing is not None)
    statement = _claim_statements.get(key) if key else None
    if statement is None:
        if completing is None:
            sql, before, after = claim_statement(
                store, condition, tables, limit, lease_seconds, started,
                load)
            head = []
        else:
            sql, head, before, after = completing_statement(
                store, condition, tables, limit, lease_seconds, started,
                load)
        # Kept as the values psycopg2 is given: converted once, not at
        # every claim.
        statement = (sql, database_values(store, head),
                     database_values(store, before),
                     database_values(store, after))
        if key is not None:
            _claim_statements[key] = statement
    sql, head, before, after = statement
    parameters = before + [claimer(store)] + after
    if completing is None:
        return prepared.execute(store, sql, parameters).get_all()
    rows = completing.carried(store, sql, head, parameters)
    return [row[1:] for row in rows if row[1] is not None]


def _claim_select_update(store, condition, tables, limit, lease_seconds,
                         started):
    """SQLite: the transaction holds the database's write lock, so a
    SELECT then an UPDATE are as atomic as one statement."""
    rows = store.execute(Select(
        (Job.id, Job.attempt_count, Job.max_retries, Job.cancel_requested,
         Job.status, Job.priority, Job.date_started, Job.claimed_by),
        where=And(condition, Or(*ready_kinds())),
        tables=[Job] + list(tables),
        order_by=(Desc(Job.priority), Job.id), limit=limit)).get_all()
    return claim_rows(store, rows, lease_seconds, started)


def claim_rows(store, rows, lease_seconds, started):
    """SQLite: claim the jobs of `rows` (``(id, attempt_count,
    max_retries, cancel_requested, status, priority, date_started,
    claimed_by)``, read under the write lock); return the rows of the
    claim (as `_claim_returning` returns them)."""
    if not rows:
        return []
    sets, parameters = claim_sets(store, lease_seconds, started)
    ids = [row[0] for row in rows]
    store.execute("UPDATE job SET %s WHERE id IN (%s)" % (
        ", ".join("%s = %s" % (name, sql.replace("job.", ""))
                  for name, sql in sets),
        ", ".join(["?"] * len(ids))), [claimer(store)] + parameters + ids)
    claimed = []
    for (job_id, attempt, max_retries, cancel, status, priority,
         date_started, holder) in rows:
        reused = status == RUNNING.value and date_started is None
        claimed.append((job_id, attempt if reused else attempt + 1,
                        max_retries, cancel, status, priority,
                        date_started is not None, holder))
    return claimed


def mark_started(store, job_id, attempt, completing=None):
    """Record that attempt `attempt` of job `job_id` starts now: from
    here on the attempt counts (a runner that dies leaves it charged).

    Fenced, and only once: of two runners holding the same never-started
    claim (one froze, the other took it over), exactly one marks it, and
    only that one may run it.

    :param completing: a `jobs.model.records.Completion` to record in the
        same statement (PostgreSQL; see `claim`'s).
    :return: True if this caller marked it. Leaves the transaction to the
        caller, who commits before the job runs.
    """
    now, parameters = now_sql(store)
    where, where_parameters = fenced([(job_id, attempt)])
    sql = "UPDATE job SET date_started = %s WHERE %s AND date_started" \
        " IS NULL" % (now, where)
    if completing is None or not dialect(store).returning:
        return prepared.execute(
            store, sql, parameters + where_parameters).rowcount == 1
    done, head = records.Completion.update(store)
    return completing.carried(
        store, "WITH completed AS (%s), marked AS (%s RETURNING 1) SELECT"
        " (SELECT count(*) FROM completed), (SELECT count(*) FROM marked)"
        % (done, sql), head, parameters + where_parameters)[0][1] == 1


def hold_on_session(store, job_id, attempt):
    """Make attempt `attempt` of job `job_id`'s ``claimed_by`` name the
    session of `store` (same host and runner process): a process
    runner's child runs the job, and holds its locks, on a session of its
    own, not the parent's that claimed it; a runner that takes the job
    over from a frozen runner ends that session
    (`records.end_lost_session`).

    :return: True if the row was updated (PostgreSQL, still in the
        attempt). Leaves the transaction to the caller, who commits
        before the job runs.
    """
    session = session_of(store)
    if not session:
        return False  # SQLite: one writer at a time, no session to end
    where, parameters = fenced([(job_id, attempt)])
    return store.execute(
        "UPDATE job SET claimed_by = split_part(claimed_by, '/', 1) || '/'"
        " || ? WHERE %s" % where, [session] + parameters).rowcount == 1


def lock(store, claims):
    """Lock the rows of `claims` (``[(job_id, attempt)]``) until the
    transaction ends: on PostgreSQL ``SELECT ... FOR NO KEY UPDATE`` (a
    reclaimer skips locked rows, so none can be taken over until this
    transaction records their outcomes); on SQLite the transaction's write
    lock does the same.

    :return: ``(lost, cancelled)``: the claims whose row moved on since
        the claim, as ``(job_id, attempt)``, and the set of the ids of
        the others whose cancel was requested. (PostgreSQL answers with
        those two lists, one row: a group's rows are not read back one
        by one.)
    """
    if not claims:
        return [], set()
    ids = [job_id for job_id, _ in claims]
    if dialect(store).arrays:
        # One prepared statement for any group size.
        ids = IntArray(ids)
        moved, cancel = prepared.execute(store, LOCK_SQL, [
            ids, IntArray(attempt for _, attempt in claims), ids]).get_one()
        moved = set(moved or ())
        lost = [claim for claim in claims if claim[0] in moved] if moved \
            else []
        return lost, set(cancel or ())
    rows = {row[0]: row[1:] for row in store.execute(
        "SELECT id, status, attempt_count, cancel_requested FROM job"
        " WHERE id IN (%s)" % ", ".join(["?"] * len(ids)), ids)}
    lost, cancelled = [], set()
    for job_id, attempt in claims:
        status, current, cancel = rows.get(job_id, (None, None, None))
        if status != RUNNING.value or current != attempt:
            lost.append((job_id, attempt))
        elif cancel:
            cancelled.add(job_id)
    return lost, cancelled


# `lock` on PostgreSQL: the claims that moved on, and the cancelled
# (parameters: the ids, the attempts, the ids again).
LOCK_SQL = (
    "WITH locked AS (SELECT id, status, attempt_count, cancel_requested"
    " FROM job WHERE id = ANY(?::integer[]) FOR NO KEY UPDATE),"
    " mine AS (SELECT given.id, locked.status = %d AND"
    " locked.attempt_count = given.attempt AS current,"
    " locked.cancel_requested FROM unnest(?::integer[], ?::integer[])"
    " AS given(attempt, id) LEFT JOIN locked ON locked.id = given.id)"
    " SELECT array_agg(id) FILTER (WHERE current IS NOT TRUE),"
    " array_agg(id) FILTER (WHERE current AND cancel_requested) FROM mine"
    % RUNNING.value)


def release(store, claims):
    """Give back claimed jobs whose attempts never started.

    Undoes each claim: WAITING again, the attempt not counted, the lease
    and start date cleared. Fenced, so a claim another runner has taken
    over since is left alone.

    :param claims: ``[(job_id, attempt)]``.
    :return: how many were given back. Leaves the transaction to the
        caller.
    """
    released = 0
    for chunk in ([claims] if dialect(store).arrays else chunks(claims)):
        where, parameters = fenced_any(store, chunk)
        result = prepared.execute(
            store, "UPDATE job SET status = %d, lease_expires = NULL,"
            " date_started = NULL, attempt_count = attempt_count - 1"
            " WHERE %s" % (WAITING.value, where), parameters)
        released += result.rowcount
    # Objects cached before the UPDATE are stale now.
    invalidate(store)
    return released


