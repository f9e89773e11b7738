"""What an operator does to jobs: retry, cancel, suspend, resume — one
job, a list, or every job a `jobs.jobfilter.JobFilter` matches.

The ``jobs`` command and the dashboard both act here. Each action is one
conditional UPDATE per batch of ids, naming the statuses it moves from,
so a job that moved meanwhile is left alone (and counted as skipped);
each batch is committed on its own, and jobs made WAITING are sent to
Celery when their section dispatches to it.

- retry: FAILED -> WAITING, now (attempts are kept: one more attempt);
  the jobs its failure cancelled are pending again;
- cancel: WAITING, SUSPENDED or BLOCKED -> CANCELLED, and the jobs
  waiting for it are cancelled as after a failure; RUNNING: ask its
  runner to stop it (``cancel_requested``; the runner records
  CANCELLED);
- suspend: WAITING -> SUSPENDED;
- resume: SUSPENDED -> WAITING.
"""

__all__ = ["ACTIONS", "Action", "apply", "apply_to_filter", "count"]

from dataclasses import dataclass

import transaction
from storm.expr import And, Update

from jobs.celery.dispatch import run_on_commit_if_celery
from jobs.database import UTCNow
from jobs.interfaces.job import JobStatus
from jobs.model import dependencies
from jobs.model.job import Job

WAITING, RUNNING, FAILED, SUSPENDED, CANCELLED, BLOCKED = (
    JobStatus.WAITING, JobStatus.RUNNING, JobStatus.FAILED,
    JobStatus.SUSPENDED, JobStatus.CANCELLED, JobStatus.BLOCKED)


@dataclass(frozen=True)
class Action:
    """One operator action.

    :ivar name: ``retry``, ``cancel``, ``suspend`` or ``resume``.
    :ivar done: the past participle (``retried``) for messages.
    :ivar sources: the statuses it moves jobs from.
    :ivar target: the status it moves them to.
    :ivar requests: statuses where it only sets ``cancel_requested``.
    """

    name: str
    done: str
    sources: tuple
    target: JobStatus
    requests: tuple = ()

    def changes(self):
        """{column: value} the UPDATE sets besides the status."""
        if self.target is CANCELLED:
            return {Job.date_finished: UTCNow(), Job.lease_expires: None}
        if self.target is WAITING:
            changes = {Job.lease_expires: None}
            if self.name == "retry":
                changes[Job.scheduled_start] = None
            return changes
        return {}

    @property
    def acts_on(self):
        """Every status the action does something to."""
        return self.sources + self.requests


ACTIONS = {action.name: action for action in (
    Action("retry", "retried", (FAILED,), WAITING),
    Action("cancel", "cancelled", (WAITING, SUSPENDED, BLOCKED), CANCELLED,
           requests=(RUNNING,)),
    Action("suspend", "suspended", (WAITING,), SUSPENDED),
    Action("resume", "resumed", (SUSPENDED,), WAITING),
)}


def apply(store, action, ids):
    """Do `action` to the jobs `ids` that are in a status it acts on, in
    the current transaction (the caller commits).

    :return: ``(moved ids, cancel-requested ids)``.
    """
    ids = list(ids)
    if not ids:
        return [], []
    requested = []
    if action.requests:
        requested = list(store.find(
            Job.id, Job.id.is_in(ids), Job.status.is_in(action.requests)))
        if requested:
            store.find(Job, Job.id.is_in(requested)).set(
                cancel_requested=True)
    moved = list(store.find(Job.id, Job.id.is_in(ids),
                            Job.status.is_in(action.sources)))
    if moved:
        sets = {Job.status: action.target.value}
        sets.update(action.changes())
        store.execute(Update(sets, where=And(
            Job.id.is_in(moved), Job.status.is_in(action.sources)),
            table=Job))
        _dependents(store, action, moved)
    store.invalidate()
    if action.target is WAITING:
        for job_id in moved:
            run_on_commit_if_celery(job_id)
    return moved, requested


def _dependents(store, action, moved):
    """A cancelled job cancels the jobs waiting for it (as a failure
    does); a retried one makes pending again those its failure
    cancelled (`jobs.model.dependencies`)."""
    parents = list(store.find(Job.id, Job.id.is_in(moved),
                              Job.has_dependents == True))  # noqa: E712
    if not parents:
        return
    if action.target is CANCELLED:
        dependencies.settle(store, [(job_id, CANCELLED)
                                    for job_id in parents])
    elif FAILED in action.sources:
        dependencies.reenable(store, parents)


def apply_to_filter(store, config, action, job_filter, batch=1000,
                    progress=None):
    """Do `action` to every job `job_filter` matches (narrowed to the
    statuses the action acts on), `batch` jobs per committed transaction.

    :param progress: called with the number of jobs of each batch done.
    :return: ``(moved, cancel requested)`` counts.
    """
    narrowed = _narrowed(action, job_filter)
    moved = requested = 0
    if narrowed is None:
        return moved, requested
    for ids in narrowed.ids(store, config, batch):
        done, asked = apply(store, action, ids)
        transaction.commit()
        moved += len(done)
        requested += len(asked)
        if progress is not None:
            progress(len(ids))
    return moved, requested


def count(store, config, action, job_filter):
    """How many jobs `apply_to_filter` would act on (now)."""
    narrowed = _narrowed(action, job_filter)
    if narrowed is None:
        return 0
    return store.find(Job, *narrowed.conditions(store, config)).count()


def _narrowed(action, job_filter):
    """`job_filter` narrowed to the statuses `action` acts on (None when
    it asks for none of them)."""
    statuses = tuple(status for status in job_filter.statuses
                     if status in action.acts_on) if job_filter.statuses \
        else action.acts_on
    return job_filter.narrowed(statuses=statuses) if statuses else None
