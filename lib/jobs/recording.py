"""`OutcomeRecorder`: record what an attempt ended in.

The second half of `jobs.execution.Execution`: once the outcome policy
has decided (`jobs.outcome.decide`), roll back or keep the job's work,
file the OOPS report *before* FAILED is committed (a runner killed in
between leaves a report for a job that runs again, never a FAILED job
without one), write the fenced outcome (`jobs.model.records.record`),
notify the job in a savepoint, commit — or, in a group commit, defer
COMPLETED outcomes to one statement for the group (`commit_group`). It
also keeps the run's tallies and logs its summary.
"""

__all__ = ["OutcomeRecorder", "job_str"]

import sys
from collections import namedtuple
from functools import partial
from operator import itemgetter

import transaction

from jobs.database import Savepoint, forget_dead_objects, get_store
from jobs.model import claims, records
from jobs.outcome import COMPLETE, STALE

# A COMPLETED outcome of a group commit, recorded and counted with the
# group (`commit_group`): the first five fields are what
# `jobs.model.records.record_completed` takes; then the job's class name,
# the seconds it ran and whether it was taken over from a lost runner.
Deferred = namedtuple(
    "Deferred", "job_id attempt log_tail progress result job_type seconds"
    " lost")
# A `Deferred` of its values, without namedtuple's Python __new__.
_deferred = partial(tuple.__new__, Deferred)
_job_type, _seconds, _lost = itemgetter(5), itemgetter(6), itemgetter(7)

# What a notification may raise that is the job's, not the runner's.
JOB_ERRORS = (Exception, SystemExit, GeneratorExit)
# How many OOPS ids a runner keeps (`OutcomeRecorder.filed_oops`).
KEEP_OOPS_IDS = 1000


def job_str(job, job_id=None):
    """``Class (ID n)``: how log lines name a job. (A job's repr usually
    shows its status, which would load its row: a query a job.) A caller
    that has the id at hand (the claim's) gives it: the job's own is read
    through its context."""
    return "%s (ID %d)" % (type(job).__name__,
                           job.job_id if job_id is None else job_id)


class OutcomeRecorder:
    """Records outcomes; `jobs.execution.Execution` provides the logger,
    the error reporter, the tallies and `group_commit`."""

    # A COMPLETED outcome is handed to `record_outcome`'s `before_commit`,
    # whose claim records it (set by a runner that claims so).
    completes_by_claim = False

    def record_outcome(self, job, attempt, outcome, before_commit=None):
        """Record `outcome` of `attempt` of `job` (see the module's
        docstring); commit unless in a group.

        :param before_commit: called in the outcome's transaction just
            before it commits (not in a group); what it returns, if not
            None, is called once that commit has succeeded. A COMPLETED
            outcome is handed to it as a `jobs.model.records.Completion`
            (before anything else is written), for the statement it
            sends to record.
        """
        savepoint = attempt.savepoint
        if outcome.keep_work:
            if savepoint is not None:
                savepoint.release()
        elif savepoint is not None:
            savepoint.rollback()
        else:
            # Before touching the row: a failed SQL statement poisons the
            # transaction, and the job's work must go anyway.
            transaction.abort()
        if outcome.status is None:
            return self._stale(job, attempt)
        report = None
        if outcome.oops:
            report = self.file_oops(job, outcome.error, attempt.log_tail)
        result = attempt.result if outcome is COMPLETE else None
        adopt = None  # what before_commit returned
        deferred = outcome is COMPLETE and self.group_commit
        if deferred:
            self.deferred.append(_deferred((
                attempt.job_id, attempt.number, attempt.log_tail,
                attempt.outcome_progress(), result, type(job).__name__,
                attempt.seconds(), attempt.lost)))
        else:
            completion = None
            if (outcome is COMPLETE and before_commit is not None
                    and attempt.started and self.completes_by_claim):
                # The next claim records it, in one round trip.
                completion = records.Completion(
                    attempt.job_id, attempt.number, attempt.log_tail,
                    attempt.outcome_progress(), result)
                adopt = before_commit(completion)
                before_commit = None
            if (completion is None or not completion.recorded) and \
                    not records.record(
                        get_store(), attempt.job_id, attempt.number,
                        outcome.status, retry_delay=outcome.retry_delay,
                        log=attempt.log_tail,
                        progress=attempt.outcome_progress(),
                        uncount=not attempt.started, result=result,
                        made_ready=self.made_ready):
                if adopt is not None and completion.committed:
                    adopt()  # the claim went through by itself
                return self._stale(job, attempt)
        attempt.recorded = True
        if self.heartbeat is not None and not deferred:
            # (A group's recorded attempts are forgotten with the group:
            # the heartbeat renews no recorded attempt.)
            self.heartbeat.forget([attempt])
        if outcome is not COMPLETE or self.says_debug:
            self._log_outcome(job, attempt, outcome, report)
        if outcome.notify is not None:
            self._notify(job, getattr(job, outcome.notify),
                         report if outcome.oops else outcome.error)
        if not self.group_commit:
            if before_commit is not None:
                adopt = before_commit()
            transaction.commit()
            if adopt is not None:
                adopt()
        if not deferred:
            self._count(job, attempt, outcome)
        elif self.keep_jobs:
            self.completed_jobs.append(job)  # counted with its group

    def _stale(self, job, attempt):
        """The attempt was fenced: drop its outcome and its work."""
        if self.group_commit:
            if attempt.savepoint is not None:
                attempt.savepoint.rollback()
        else:
            transaction.abort()
        attempt.recorded = True
        if self.heartbeat is not None:
            self.heartbeat.forget([attempt])
        if not attempt.started:
            # Taken over while waiting in this runner's batch: it never ran
            # here, so nothing was lost.
            self.logger.info("Skipped %s: another runner took it over"
                             " before it started here.", job_str(job))
        else:
            self.logger.warning(
                "%s: attempt %d was fenced (another runner took the job"
                " over after its lease expired); its outcome and its"
                " database changes were dropped.", job_str(job),
                attempt.number)
        self._count(job, attempt, STALE)

    def _log_outcome(self, job, attempt, outcome, report):
        error = outcome.error
        if outcome is COMPLETE:
            if self.says_debug:
                self.logger.debug("Completed %s.", job_str(job))
        elif outcome.name == "retry":
            self.logger.info("Scheduling retry due to %s: %s.",
                             type(error).__name__, error)
        elif outcome.name == "transient":
            self.logger.info(
                "%s met a transient database error (%s): trying again in"
                " %g s.", job_str(job), type(error).__name__,
                outcome.retry_delay.total_seconds())
        elif outcome.name == "user-error":
            self.logger.info("%s failed with user error %r.",
                             job_str(job), error)
        elif outcome.name == "suspend":
            self.logger.debug("Job suspended itself")
        elif outcome.name == "cancel":
            self.logger.info("Cancelled %s%s.", job_str(job),
                             "" if attempt.started else
                             " before it started")
        elif outcome.name == "requeue":
            self.logger.info("Giving %s back to the queue after %s.",
                             job_str(job), type(error).__name__)
            self.requeued.append(attempt.job_id)

    def _count(self, job, attempt, outcome):
        """Count the outcome (an endless worker keeps counts, not jobs;
        the metrics' `tally` too)."""
        completed = outcome is COMPLETE
        name = type(job).__name__
        (self.completed if completed else self.incomplete)[name] += 1
        self.tally.outcome(name, outcome.name, attempt.seconds(),
                           attempt.lost)
        if self.keep_jobs:
            (self.completed_jobs if completed
             else self.incomplete_jobs).append(job)

    def count_group(self, deferred, committed):
        """Count a group's `deferred` outcomes once its transaction ended:
        COMPLETED when it `committed`; else as not completed (their work
        was rolled back, and the jobs run again)."""
        names = set(map(_job_type, deferred))
        for name in names:
            rows = deferred if len(names) == 1 else [
                row for row in deferred if row.job_type == name]
            if not committed:
                self.incomplete[name] += len(rows)
                continue
            self.completed[name] += len(rows)
            self.tally.outcomes_of(name, COMPLETE.name,
                                   list(map(_seconds, rows)),
                                   sum(map(_lost, rows)))

    def commit_group(self, before_commit=None):
        """Record the group's deferred outcomes in one statement, commit.

        The runner locked the group's rows, so no outcome can be refused;
        if one is all the same, the group's work is rolled back and its
        jobs run again once their leases expire (at least once, as after
        a crash).

        :param before_commit: as `record_outcome`'s (the next claim rides
            on the group's commit), not handed a completion.
        """
        forget_dead_objects(get_store())
        deferred, self.deferred = self.deferred, []
        if deferred and records.record_completed(
                get_store(), [row[:5] for row in deferred],
                self.made_ready) != len(deferred):
            transaction.abort()
            self.count_group(deferred, committed=False)
            self.logger.warning(
                "The outcomes of a group of %d jobs could not be recorded"
                " (a row changed under this runner): the group was rolled"
                " back; its jobs run again when their leases expire.",
                len(deferred))
            return
        adopt = before_commit() if before_commit is not None else None
        transaction.commit()
        self.count_group(deferred, committed=True)
        if adopt is not None:
            adopt()

    def file_oops(self, job, error, log_tail=None):
        """Write the OOPS report of `job`'s failure with `error`; return
        the report."""
        exc_info = (type(error), error, error.__traceback__)
        report = self.error_reporter.raising(
            exc_info, job.getOopsVars(), job_id=job.job_id,
            job_type=type(job).__name__,
            operation=job.getOperationDescription(), log_tail=log_tail)
        self._record_oops(report)
        return report

    _last_report = None

    def _record_oops(self, report):
        self._last_report = report
        if report.get("id"):
            self.logger.info("Job resulted in OOPS: %s", report["id"])
            self.filed_oops(report["id"])

    def filed_oops(self, oops_id):
        """Count the OOPS report `oops_id`, and keep its id among the last
        `KEEP_OOPS_IDS` (a long-running worker's memory stays bounded)."""
        self.oops_filed += 1
        self.oops_ids.append(oops_id)
        if len(self.oops_ids) > KEEP_OOPS_IDS:
            del self.oops_ids[:-KEEP_OOPS_IDS]

    def _notify(self, job, notify, argument):
        """Call `notify` in a savepoint of the outcome's transaction; if
        it fails, file an OOPS for that failure (its writes undone)."""
        savepoint = Savepoint(get_store())
        try:
            notify(argument)
            savepoint.release()
        except JOB_ERRORS:
            savepoint.rollback()
            report = self.error_reporter.raising(
                sys.exc_info(), job.getOopsVars(), job_id=job.job_id,
                job_type=type(job).__name__,
                operation=job.getOperationDescription())
            self._record_oops(report)

    def log_summary(self, logger=None):
        """Log ``Ran n <Class> jobs.`` and ``n <Class> jobs did not
        complete.`` (or ``No jobs to run.``)."""
        logger = logger or self.logger
        if not self.completed and not self.incomplete:
            logger.info("No jobs to run.")
        for name, count in sorted(self.completed.items()):
            logger.info("Ran %d %s jobs.", count, name)
        for name, count in sorted(self.incomplete.items()):
            logger.info("%d %s jobs did not complete.", count, name)
