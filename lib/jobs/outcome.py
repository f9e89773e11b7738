"""The outcome policy: how one attempt at running a job ends.

This module is the only place where the outcome table and the "attempts
left" rule live. It is pure: no database, no clock, no logging. Every
runner (in-process, process pool, worker, Celery) asks `decide` what an
attempt ended in and records that (`jobs.model.claims.record_outcome`).

=========================================  ==========  =============  =====
what happened                              status      job's changes  OOPS
=========================================  ==========  =============  =====
run() returned                             COMPLETED   committed      no
a retry error, attempts left               WAITING     committed      no
a retry error, no attempts left            FAILED      rolled back    yes
a retry error, its retry_delay out of      FAILED      rolled back    yes
  range (`jobs.bounds`)
a deadlock or serialization failure        WAITING     rolled back    no
  (transient), attempts left: soon again
the same, no attempts left                 FAILED      rolled back    yes
a user error                               FAILED      rolled back    no
SuspendJobException                        SUSPENDED   committed      no
JobCancelled (``check_cancelled()``)       CANCELLED   rolled back    no
anything else (any BaseException)          FAILED      rolled back    yes
a requeue error (Celery's soft limit)      WAITING     rolled back    no
StaleJob: the attempt was fenced           (nothing)   rolled back    no
its runner was lost, attempts left         (runs again as a new attempt)
its runner was lost, no attempts left      FAILED      rolled back    yes
=========================================  ==========  =============  =====

"Attempts left": attempt N may be followed by another while
``N <= max_retries`` (`attempts_left`). A retry error on the last attempt
is reported like any other failure.
"""

__all__ = [
    "CANCEL",
    "COMPLETE",
    "DEFAULT_POLICY",
    "ErrorPolicy",
    "FAIL",
    "Outcome",
    "REQUEUE",
    "RETRY",
    "STALE",
    "SUSPEND",
    "TRANSIENT",
    "USER_ERROR",
    "attempts_left",
    "decide",
    "decide_lost",
    "is_transient",
]

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Optional

from jobs.bounds import RETRY_DELAY, problem
from jobs.errors import (
    InvalidJobOption, JobCancelled, LostRunner, StaleJob, SuspendJobException)
from jobs.interfaces.job import JobStatus


def attempts_left(attempt: int, max_retries: int) -> bool:
    """Whether attempt number `attempt` may be followed by another."""
    return attempt <= max_retries


@dataclass(frozen=True)
class Outcome:
    """What one attempt ended in, and what the runner records for it.

    :ivar name: one of the module's constants' names, for logs and tests.
    :ivar status: the `JobStatus` recorded; None when nothing is (stale).
    :ivar keep_work: the job's own database changes are committed with
        the status (otherwise they are rolled back first).
    :ivar oops: an OOPS report is filed (before FAILED is committed).
    :ivar notify: the job's method called with the report or the error
        (``"notifyOops"``, ``"notifyUserError"``) or None.
    :ivar retry_delay: for a retry, how long until the job is due again
        (a `timedelta`); None for every other outcome.
    :ivar error: the exception that caused it (None when run() returned).
    """

    name: str
    status: Optional[JobStatus]
    keep_work: bool
    oops: bool = False
    notify: Optional[str] = None
    retry_delay: Optional[timedelta] = None
    error: Optional[BaseException] = field(default=None, compare=False)

    def because(self, error: Optional[BaseException],
                retry_delay: Optional[timedelta] = None) -> "Outcome":
        """This outcome, caused by `error` (and with `retry_delay`)."""
        return Outcome(self.name, self.status, self.keep_work, self.oops,
                       self.notify, retry_delay, error)


COMPLETE = Outcome("complete", JobStatus.COMPLETED, keep_work=True)
RETRY = Outcome("retry", JobStatus.WAITING, keep_work=True)
SUSPEND = Outcome("suspend", JobStatus.SUSPENDED, keep_work=True)
USER_ERROR = Outcome("user-error", JobStatus.FAILED, keep_work=False,
                     notify="notifyUserError")
FAIL = Outcome("fail", JobStatus.FAILED, keep_work=False, oops=True,
               notify="notifyOops")
CANCEL = Outcome("cancel", JobStatus.CANCELLED, keep_work=False)
REQUEUE = Outcome("requeue", JobStatus.WAITING, keep_work=False)
TRANSIENT = Outcome("transient", JobStatus.WAITING, keep_work=False)
STALE = Outcome("stale", None, keep_work=False)


@dataclass(frozen=True)
class ErrorPolicy:
    """A job class's error types: the part of the table it chooses.

    :ivar user_error_types: the user's fault: FAILED, no OOPS.
    :ivar retry_error_types: transient: try again after `retry_delay`.
    :ivar retry_delay: a `timedelta`.
    :ivar requeue_error_types: the runner's, not the job's: give the job
        back at once, its work rolled back (a Celery worker's soft time
        limit, to move it to the slow queue).
    :ivar transient_retry_delay: how soon a job that lost a deadlock or a
        serialization conflict runs again (a `timedelta`).
    """

    user_error_types: tuple = ()
    retry_error_types: tuple = ()
    retry_delay: timedelta = timedelta(minutes=10)
    requeue_error_types: tuple = ()
    transient_retry_delay: timedelta = timedelta(seconds=1)

    @classmethod
    def of(cls, job, requeue_error_types: tuple = ()) -> "ErrorPolicy":
        """The policy `job` (an `IRunnableJob`) declares."""
        return cls(tuple(job.user_error_types), tuple(job.retry_error_types),
                   job.retry_delay, tuple(requeue_error_types),
                   getattr(job, "transient_retry_delay",
                           cls.transient_retry_delay))


# The policy of a job whose error types are not asked for (its run()
# returned): the defaults.
DEFAULT_POLICY = ErrorPolicy()


# SQLSTATEs of errors that say "run it again" rather than "it is broken":
# deadlock_detected, serialization_failure, lock_not_available (a
# lock_timeout).
TRANSIENT_SQLSTATES = frozenset(("40P01", "40001", "55P03"))


def is_transient(error: BaseException) -> bool:
    """Whether `error` is the database's "try again": a deadlock, a
    serialization failure, a lock wait that timed out (PostgreSQL's
    SQLSTATE), or SQLite's database lock held past its timeout."""
    # Storm re-raises psycopg2's error as its own, without the SQLSTATE:
    # the original is the cause.
    for raised in (error, error.__cause__):
        if getattr(raised, "pgcode", None) in TRANSIENT_SQLSTATES:
            return True
    return (type(error).__name__ == "OperationalError"
            and "database is locked" in str(error))


def decide(error: Optional[BaseException], attempt: int, max_retries: int,
           policy: ErrorPolicy) -> Outcome:
    """Return the `Outcome` of attempt number `attempt` whose ``run()``
    returned (`error` None) or raised `error`.

    Every exception belongs to the job, ``BaseException`` included: a
    ``sys.exit()`` in job code fails that job; it does not stop the
    runner. (The runner tells a real signal from job code before asking.)
    """
    if error is None:
        return COMPLETE
    if isinstance(error, StaleJob):
        return STALE.because(error)
    if isinstance(error, JobCancelled):
        return CANCEL.because(error)
    if isinstance(error, SuspendJobException):
        return SUSPEND.because(error)
    if policy.requeue_error_types and isinstance(
            error, policy.requeue_error_types):
        return REQUEUE.because(error)
    if isinstance(error, policy.retry_error_types):
        if attempts_left(attempt, max_retries):
            return _retry(RETRY, error, "retry_delay", policy.retry_delay)
        return FAIL.because(error)
    if is_transient(error):
        if attempts_left(attempt, max_retries):
            return _retry(TRANSIENT, error, "transient_retry_delay",
                          policy.transient_retry_delay)
        return FAIL.because(error)
    if isinstance(error, policy.user_error_types):
        return USER_ERROR.because(error)
    return FAIL.because(error)


def _retry(outcome: Outcome, error: BaseException, name: str,
           delay: Any) -> Outcome:
    """`outcome` after `delay`; FAIL, naming the policy, when the job's
    delay is out of `jobs.bounds.RETRY_DELAY` (a negative one would retry
    at once in a loop, a huge one write a date past the year 9999)."""
    wrong = problem(RETRY_DELAY, delay)
    if wrong is not None:
        return FAIL.because(InvalidJobOption(
            "%s: %s (the job raised %s)" % (name, wrong, _describe(error))))
    return outcome.because(error, delay)


def _describe(error: BaseException) -> str:
    try:
        return "%s: %s" % (type(error).__name__, error)
    except Exception:
        return type(error).__name__


def decide_lost(lost_attempt: int, max_retries: int) -> Optional[Outcome]:
    """The runner of attempt `lost_attempt` was lost (its lease expired
    while the job was RUNNING) and another runner took the job over.

    :return: None when the job runs again as a new attempt; else the
        FAILED outcome, with a `LostRunner` error for its OOPS.
    """
    if attempts_left(lost_attempt, max_retries):
        return None
    return FAIL.because(LostRunner(
        "The runner of attempt %d was lost (its lease expired while the job"
        " was RUNNING) and no attempts are left." % lost_attempt))
