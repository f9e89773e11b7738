"""Dependencies between jobs: a job runs once the jobs it depends on have
completed.

The edges are rows of ``job_dependency (job, depends_on)``. A job created
with dependencies that have not all completed is BLOCKED, and
``job.waiting_on`` counts the ones it still waits for. Every outcome of a
job with dependents (``job.has_dependents``) settles them here, in the
outcome's transaction:

- COMPLETED counts each dependent down; one that reaches 0 is WAITING, so
  ready (the ready definition tests the status only: waiting for
  dependencies costs the claim nothing);
- FAILED or CANCELLED cancels each BLOCKED dependent, naming the failed
  dependency in ``job.cancelled_by``, and so on down the graph; a
  dependent created with ``on_dependency_failure="run"`` is counted down
  instead, as if the dependency had completed.

Retrying a failed dependency (`reenable`) makes the dependents it
cancelled pending again, down the graph. A dependency's row is locked
when a dependent is attached to it, so an outcome recorded meanwhile
waits for the new edge and sees it.

Cycles cannot come from creation (a new job can only depend on jobs that
exist); `add_dependencies` links jobs that exist and refuses a cycle.
"""

__all__ = [
    "ON_DEPENDENCY_FAILURE",
    "add_dependencies",
    "attach",
    "dependency_ids",
    "graph",
    "reenable",
    "results_of",
    "settle",
]

import json

from zope.event import notify

from jobs.database import dialect
from jobs.errors import DependencyCycle, InvalidJobOption
from jobs.interfaces.job import JobStatus
from jobs.model.events import JobsUnblocked
from jobs.model.fencing import chunks
from jobs.model.fencing import now as now_sql
from jobs.model.rows import insert_rows

COMPLETED = JobStatus.COMPLETED.value
FAILED = JobStatus.FAILED.value
CANCELLED = JobStatus.CANCELLED.value
BLOCKED = JobStatus.BLOCKED.value
WAITING = JobStatus.WAITING.value
# What a dependent does when a job it depends on fails or is cancelled.
ON_DEPENDENCY_FAILURE = ("cancel", "run")


def _marks(values):
    return ", ".join(["?"] * len(values))


def _lock_and_read(store, job_ids):
    """Mark `job_ids` as having dependents (which locks their rows until
    this transaction ends: an outcome recorded meanwhile waits, then sees
    the new edges) and return ``{job_id: status value}``."""
    found = {}
    for chunk in chunks(sorted(job_ids)):
        store.execute("UPDATE job SET has_dependents = ? WHERE id IN (%s)"
                      % _marks(chunk), [True] + chunk)
        found.update(store.execute(
            "SELECT id, status FROM job WHERE id IN (%s)" % _marks(chunk),
            chunk))
    missing = sorted(set(job_ids) - set(found))
    if missing:
        raise InvalidJobOption(
            "depends_on: there is no job %s." % ", ".join(map(str, missing)))
    return found


def attach(store, entries):
    """Make the new jobs of `entries` depend on the jobs they name.

    :param entries: ``[(job_id, depends_on ids, run_if_dependency_fails)]``
        of jobs just inserted (WAITING, not committed).
    Each becomes BLOCKED while some dependency has not completed, or
    CANCELLED at once when one already failed (unless it runs anyway).
    :raises InvalidJobOption: when a dependency does not exist.
    Leaves the transaction to the caller.
    """
    entries = [(job_id, sorted(set(depends)), run)
               for job_id, depends, run in entries if depends]
    if not entries:
        return
    statuses = _lock_and_read(store, {dep for _, deps, _ in entries
                                      for dep in deps})
    edges = [(job_id, dep) for job_id, deps, _ in entries for dep in deps]
    for first in range(0, len(edges), 2000):
        insert_rows(store, "job_dependency", ["job", "depends_on"],
                    edges[first:first + 2000])
    changes = []
    for job_id, deps, run in entries:
        failed = [dep for dep in deps
                  if statuses[dep] in (FAILED, CANCELLED)]
        waiting = len([dep for dep in deps if statuses[dep] != COMPLETED
                       and not (run and dep in failed)])
        if failed and not run:
            changes.append((job_id, CANCELLED, waiting, failed[0]))
        elif waiting:
            changes.append((job_id, BLOCKED, waiting, None))
    running_anyway = [job_id for job_id, _, run in entries if run]
    for chunk in chunks(running_anyway):
        store.execute(
            "UPDATE job SET run_if_dependency_fails = ? WHERE id IN (%s)"
            % _marks(chunk), [True] + chunk)
    now, now_parameters = now_sql(store)
    for chunk in chunks(changes):
        parameters = []
        cases = []
        for index, column in ((1, "status"), (2, "waiting_on"),
                              (3, "cancelled_by")):
            cases.append("%s = CAST(CASE id %s END AS INTEGER)" % (
                column, " ".join(["WHEN ? THEN ?"] * len(chunk))))
            for row in chunk:
                parameters += [row[0], row[index]]
        store.execute(
            "UPDATE job SET %s, date_finished = CASE WHEN id IN (%s) THEN"
            " %s END WHERE id IN (%s)" % (
                ", ".join(cases),
                _marks([1] + [row for row in chunk if row[1] == CANCELLED]),
                now, _marks(chunk)),
            parameters + [0] + [row[0] for row in chunk
                                if row[1] == CANCELLED]
            + now_parameters + [row[0] for row in chunk])


def _update_returning(store, sets, parameters, where, where_parameters):
    """``UPDATE job SET <sets> WHERE <where>``; return ``[(id,
    has_dependents, new status)]`` of the rows it changed.

    PostgreSQL returns them from the UPDATE itself (concurrent writers
    cannot slip between); SQLite, whose single writer is this
    transaction, reads them first.
    """
    if dialect(store).returning:
        return store.execute(
            "UPDATE job SET %s WHERE %s RETURNING id, has_dependents, status"
            % (sets, where), parameters + where_parameters).get_all()
    ids = [row[0] for row in store.execute(
        "SELECT id FROM job WHERE %s" % where, where_parameters)]
    if not ids:
        return []
    changed = []
    for chunk in chunks(ids):
        store.execute("UPDATE job SET %s WHERE id IN (%s)" % (
            sets, _marks(chunk)), parameters + chunk)
        changed += store.execute(
            "SELECT id, has_dependents, status FROM job WHERE id IN (%s)"
            % _marks(chunk), chunk).get_all()
    return changed


def _count_down(store, dependencies, only_run_anyway=False):
    """Count down the dependents of `dependencies` (one per edge); return
    the ids that became WAITING."""
    marks = _marks(dependencies)
    gone = ("(SELECT count(*) FROM job_dependency d WHERE d.job = job.id"
            " AND d.depends_on IN (%s))" % marks)
    sets = ("waiting_on = waiting_on - %s, status = CASE WHEN status = %d"
            " AND waiting_on - %s <= 0 THEN %d ELSE status END"
            % (gone, BLOCKED, gone, WAITING))
    where = ("id IN (SELECT job FROM job_dependency WHERE depends_on IN (%s))"
             % marks)
    if only_run_anyway:
        where += " AND run_if_dependency_fails = ?"
    rows = _update_returning(
        store, sets, list(dependencies) * 2, where,
        list(dependencies) + ([True] if only_run_anyway else []))
    return [job_id for job_id, _, status in rows if status == WAITING]


def settle(store, finished):
    """Settle the dependents of jobs that just finished.

    :param finished: ``[(job_id, JobStatus)]`` of jobs with dependents
        that just became COMPLETED, FAILED or CANCELLED.
    :return: the ids of the jobs that became ready (WAITING).
    Leaves the transaction to the caller.
    """
    ready = []
    now, now_parameters = now_sql(store)
    frontier = [(job_id, getattr(status, "value", status))
                for job_id, status in finished]
    while frontier:
        done = [job_id for job_id, status in frontier if status == COMPLETED]
        failed = [job_id for job_id, status in frontier
                  if status in (FAILED, CANCELLED)]
        frontier = []
        for chunk in chunks(done):
            ready += _count_down(store, chunk)
        for chunk in chunks(failed):
            ready += _count_down(store, chunk, only_run_anyway=True)
            cancelled = _update_returning(
                store, "status = %d, date_finished = %s, cancelled_by ="
                " (SELECT min(d.depends_on) FROM job_dependency d WHERE"
                " d.job = job.id AND d.depends_on IN (%s))" % (
                    CANCELLED, now, _marks(chunk)),
                now_parameters + chunk,
                "status = %d AND run_if_dependency_fails = ? AND id IN"
                " (SELECT job FROM job_dependency WHERE depends_on IN (%s))"
                % (BLOCKED, _marks(chunk)), [False] + chunk)
            frontier += [(job_id, CANCELLED)
                         for job_id, has_dependents, _ in cancelled
                         if has_dependents]
    if ready:
        notify(JobsUnblocked(ready))
    return ready


def reenable(store, job_ids):
    """Make pending again the jobs that the failures of `job_ids` (just
    retried) cancelled, and those that their cancellation cancelled, down
    the graph: BLOCKED while they wait for a dependency, else WAITING.

    :return: the ids of the jobs made WAITING.
    Leaves the transaction to the caller.
    """
    ready = []
    frontier = list(job_ids)
    while frontier:
        chunk, frontier = frontier[:500], frontier[500:]
        rows = _update_returning(
            store, "status = CASE WHEN waiting_on > 0 THEN %d ELSE %d END,"
            " cancelled_by = NULL, date_finished = NULL" % (BLOCKED, WAITING),
            [], "status = %d AND cancelled_by IN (%s)" % (
                CANCELLED, _marks(chunk)), list(chunk))
        ready += [job_id for job_id, _, status in rows if status == WAITING]
        frontier += [job_id for job_id, has_dependents, _ in rows
                     if has_dependents]
    if ready:
        notify(JobsUnblocked(ready))
    return ready


def dependency_ids(store, job_id):
    """``(depends_on, dependents)``: the ids of the jobs `job_id` depends
    on and of the jobs that depend on it, each sorted."""
    upstream = [row[0] for row in store.execute(
        "SELECT depends_on FROM job_dependency WHERE job = ? ORDER BY"
        " depends_on", (job_id,))]
    downstream = [row[0] for row in store.execute(
        "SELECT job FROM job_dependency WHERE depends_on = ? ORDER BY job",
        (job_id,))]
    return upstream, downstream


def graph(store, job_id, upstream, limit=200):
    """The dependency graph around `job_id`, one way: ``{job id: [(next
    id, status value, kind)]}`` for the jobs `job_id` depends on, and
    theirs (`upstream`), or the jobs that depend on it, and theirs; at
    most `limit` jobs, nearest first."""
    mine, theirs = ("job", "depends_on") if upstream else ("depends_on",
                                                           "job")
    edges, seen, frontier = {}, {job_id}, [job_id]
    while frontier and len(seen) < limit:
        rows = store.execute(
            "SELECT d.%s, d.%s, job.status, job.kind FROM job_dependency d"
            " JOIN job ON job.id = d.%s WHERE d.%s IN (%s) ORDER BY d.%s,"
            " d.%s" % (mine, theirs, theirs, mine, _marks(frontier), mine,
                       theirs), frontier).get_all()
        frontier = []
        for here, there, status, kind in rows:
            edges.setdefault(here, []).append((there, status, kind))
            if there not in seen and len(seen) < limit:
                seen.add(there)
                frontier.append(there)
    return edges


def results_of(store, job_ids):
    """``{job_id: result}`` of `job_ids` (JSON values; None for a job
    without one)."""
    results = {}
    for chunk in chunks(sorted(set(job_ids))):
        for job_id, text in store.execute(
                "SELECT id, result FROM job WHERE id IN (%s)" % _marks(chunk),
                chunk):
            # Storm's connections return JSON columns as text.
            results[job_id] = None if text is None else json.loads(text)
    return results


def add_dependencies(store, job_id, depends_on, run_if_dependency_fails=None):
    """Make job `job_id`, which has not started (WAITING or BLOCKED), depend
    on the jobs `depends_on` too.

    :raises DependencyCycle: when one of them depends, directly or not,
        on `job_id` (or is `job_id`).
    :raises InvalidJobOption: when a job does not exist, or `job_id` has
        started or finished.
    Leaves the transaction to the caller.
    """
    depends_on = sorted(set(depends_on))
    if not depends_on:
        return
    row = store.execute(
        "SELECT status, run_if_dependency_fails FROM job WHERE id = ?",
        (job_id,)).get_one()
    if row is None:
        raise InvalidJobOption("There is no job %d." % job_id)
    status, run = row
    if status not in (WAITING, BLOCKED):
        raise InvalidJobOption(
            "Job %d is %s: only a job that has not started can get"
            " dependencies." % (job_id, JobStatus.items[status].title))
    if run_if_dependency_fails is not None:
        run = run_if_dependency_fails
    cycle = _path_to(store, depends_on, job_id)
    if cycle:
        raise DependencyCycle(
            "Job %d cannot depend on job %d: that would make a cycle (%s)."
            % (job_id, cycle[0], " -> ".join(
                map(str, [job_id] + cycle))))
    known = {dep for dep, in store.execute(
        "SELECT depends_on FROM job_dependency WHERE job = ?", (job_id,))}
    new = [dep for dep in depends_on if dep not in known]
    if not new:
        return
    statuses = _lock_and_read(store, new)
    insert_rows(store, "job_dependency", ["job", "depends_on"],
                [(job_id, dep) for dep in new])
    failed = [dep for dep in new if statuses[dep] in (FAILED, CANCELLED)]
    waiting = len([dep for dep in new if statuses[dep] != COMPLETED
                   and not (run and dep in failed)])
    now, now_parameters = now_sql(store)
    if failed and not run:
        store.execute(
            "UPDATE job SET status = %d, waiting_on = waiting_on + ?,"
            " cancelled_by = ?, date_finished = %s WHERE id = ?"
            % (CANCELLED, now), [waiting, failed[0]] + now_parameters
            + [job_id])
    elif waiting:
        store.execute(
            "UPDATE job SET status = %d, waiting_on = waiting_on + ?"
            " WHERE id = ?" % BLOCKED, (waiting, job_id))
    store.execute("UPDATE job SET run_if_dependency_fails = ? WHERE id = ?",
                  (bool(run), job_id))


def _path_to(store, starts, target):
    """A path of dependencies from one of `starts` to `target` (its ids,
    from the start to `target`), or None."""
    if target in starts:
        return [target]
    marks = _marks(starts)
    row = store.execute(
        "WITH RECURSIVE reach (id, path) AS ("
        " SELECT id, CAST(id AS TEXT) FROM job WHERE id IN (%s)"
        " UNION"
        " SELECT d.depends_on, reach.path || ' ' || CAST(d.depends_on AS"
        " TEXT) FROM reach JOIN job_dependency d ON d.job = reach.id)"
        " SELECT path FROM reach WHERE id = ? LIMIT 1" % marks,
        list(starts) + [target]).get_one()
    if row is None:
        return None
    return [int(part) for part in row[0].split()]
