"""`Attempt`: one attempt at running one job.

A claim makes one per job it takes (`jobs.model.claims.claim`); the runner
hands it to the job (``job.attempt``), to the lease heartbeat and to the
code that records the outcome. Everything this process knows about the
attempt lives here, not on the job row or the job wrapper:

- the job id and the attempt number, which together fence every write
  (an outcome is recorded only while the row is RUNNING in this attempt)
  and make the idempotency key of the attempt's side effects outside the
  database (`key`);
- the lease: its length, and whether the heartbeat found the attempt
  fenced (another runner took the job over);
- the cancellation flag the heartbeat refreshes (`check_cancelled`);
- the log tail and the progress tree its outcome writes;
- whether its outcome was recorded.
"""

__all__ = ["Attempt", "current_attempt"]

import contextvars
import time
from typing import Callable, Optional

from jobs.errors import JobCancelled, StaleJob
from jobs.progress import ProgressTree


# The attempt whose job's code runs now (set by the runner around run()).
_current = contextvars.ContextVar("jobs_attempt", default=None)


def current_attempt() -> Optional["Attempt"]:
    """The `Attempt` whose job's code is running now, or None outside a
    runner: how a ``@task`` function (which has no ``self``) reaches its
    attempt's ``key``, ``check_cancelled()`` and ``report_progress()``."""
    return _current.get()


class Attempt:
    """One attempt at running the job `job_id`.

    :param job_id: the job's id.
    :param number: the attempt number (``attempt_count`` after the claim).
    :param max_retries: the job row's ``max_retries``.
    :param lease_seconds: the length of the lease the heartbeat renews.
    :param cancel_requested: whether a cancel was requested at the claim.
    :param lost: the previous attempt's runner was lost (the claim took
        over a RUNNING job whose lease had expired).
    """

    __slots__ = (
        "job_id", "number", "max_retries", "lease_seconds", "lost",
        "cancel_requested", "fenced", "row_locked", "recorded", "started",
        "started_at", "log_tail", "progress", "progress_unwritten",
        "progress_writer", "expired", "job", "savepoint", "start_marked",
        "lost_runner", "result",
    )

    def __init__(self, job_id: int, number: int, max_retries: int = 0,
                 lease_seconds: float = 60.0, cancel_requested: bool = False,
                 lost: bool = False, start_marked: bool = False):
        self.job_id = job_id
        self.number = number
        self.max_retries = max_retries
        self.lease_seconds = lease_seconds
        self.lost = lost
        # Its start is recorded in the database (`claims.mark_started`):
        # from then on it counts, even if this runner dies.
        self.start_marked = start_marked
        # The lost runner's ``claimed_by`` (see `lost`).
        self.lost_runner = None
        # The runnable job, once loaded (a claimer may have it already).
        self.job = None
        # In a group commit: the SAVEPOINT the job's work runs in.
        self.savepoint = None
        self.cancel_requested = bool(cancel_requested)
        # Set by the heartbeat when the row moved on to another attempt.
        self.fenced = False
        # This process's transaction holds the job row's lock (a group):
        # the row cannot be taken over, and no other connection may write
        # it until that transaction ends.
        self.row_locked = False
        self.recorded = False
        self.started = False
        self.started_at: Optional[float] = None
        # Set by the heartbeat past the section's max_runtime.
        self.expired = False
        self.log_tail: Optional[str] = None
        # The JSON text of what run() returned (stored when COMPLETED).
        self.result: Optional[str] = None
        self.progress: Optional[ProgressTree] = None
        # Progress not yet written (it goes with the outcome).
        self.progress_unwritten = False
        # Writes the progress JSON now, in a transaction of its own;
        # returns False when it cannot (it then goes with the outcome).
        self.progress_writer: Optional[Callable[["Attempt", str], bool]] = None

    def __repr__(self):
        return "<Attempt %d of job %d>" % (self.number, self.job_id)

    @property
    def key(self) -> tuple:
        """``(job_id, attempt number)``: unique to this attempt; the
        idempotency key of its side effects outside the database (a
        payment, an e-mail): the other side performs each at most once per
        attempt, and tells a fenced attempt from its successor."""
        return (self.job_id, self.number)

    def start(self) -> None:
        """Note that the job's code starts running now."""
        self.started = True
        self.started_at = time.monotonic()

    def seconds(self) -> Optional[float]:
        """Seconds since `start`; None when the job's code never started."""
        started_at = self.started_at
        return None if started_at is None else time.monotonic() - started_at

    def begin(self):
        """`start`; `current_attempt()` returns this attempt until `end`
        is given what this returns (the job's code runs in between)."""
        self.started = True  # (`start`, inline: once a job)
        self.started_at = time.monotonic()
        return _current.set(self)

    @staticmethod
    def end(token):
        """See `begin`."""
        _current.reset(token)

    def check_cancelled(self) -> None:
        """Raise if the job should stop now.

        :raises JobCancelled: an operator asked to cancel the job (the
            heartbeat saw ``cancel_requested``): it ends CANCELLED, no OOPS.
        :raises StaleJob: the attempt was fenced: another runner took the
            job over, so nothing this attempt does will be kept.
        """
        if self.fenced:
            raise StaleJob(
                "Job %d: attempt %d lost its lease to another runner; its"
                " outcome will not be recorded." % (self.job_id, self.number))
        if self.cancel_requested:
            raise JobCancelled("Job %d was cancelled while running (attempt"
                               " %d)." % (self.job_id, self.number))

    def report_progress(self, current, total, status_line=None,
                        group=()) -> None:
        """Record progress (see `IJob.reportProgress`): written at once by
        the progress writer when it can, else with the outcome."""
        if self.progress is None:
            self.progress = ProgressTree()
        self.progress.set(current, total, status_line, tuple(group))
        writer = self.progress_writer
        written = (writer is not None and not self.row_locked
                   and writer(self, self.progress.to_json()))
        self.progress_unwritten = not written

    def outcome_progress(self) -> Optional[str]:
        """The progress JSON the outcome's UPDATE must write, or None."""
        if self.progress is not None and self.progress_unwritten:
            return self.progress.to_json()
        return None
