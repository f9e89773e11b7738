"""`Ledger`: what became of the jobs, read back from the database.

A `DoFooJob` with ``record`` inserts a row into ``job_execution`` inside
its own transaction, so a row there is a committed execution of the job:
it must exist exactly once for a job that completed, and never for a job
whose ``run()`` failed (its work is rolled back).
"""

__all__ = ["Ledger"]

import json
from collections import Counter

import transaction
from storm.exceptions import DisconnectionError

from jobs.errorlog import iter_reports
from jobs.interfaces.job import JobStatus

AUDIT = """
SELECT job.id, job.status, job.attempt_count, foo_job.json_data::text,
       count(job_execution.job), min(job_execution.attempt)
FROM job
JOIN foo_job ON foo_job.job = job.id
LEFT JOIN job_execution ON job_execution.job = job.id
GROUP BY job.id, foo_job.json_data::text
ORDER BY job.id
"""


class Ledger:
    """Reads the outcome of every `DoFooJob` in `store`'s database.

    A job is expected to end FAILED when its ``json_data`` asks ``run()``
    to raise an error, else COMPLETED; with one committed execution when
    it completed and asked to ``record``, none otherwise.
    """

    def __init__(self, store):
        self.store = store

    def pending(self):
        """How many jobs are WAITING or RUNNING (a fresh read); None when
        the test's own connection was just lost (the next call
        reconnects)."""
        return self._count(
            "SELECT count(*) FROM job WHERE status IN (%d, %d)"
            % (JobStatus.WAITING.value, JobStatus.RUNNING.value))

    def executions(self):
        """How many executions are committed; None as for `pending`."""
        return self._count("SELECT count(*) FROM job_execution")

    def _count(self, sql):
        try:
            return self.store.execute(sql).get_one()[0]
        except DisconnectionError:
            return None
        finally:
            transaction.abort()

    def audit(self, max_problems=20):
        """Check every job; return ``(problems, summary)``.

        :return: `problems`, a list of one line per job that broke a rule
            (at most `max_problems` lines, then a count); `summary`, a dict
            of counts: jobs, statuses, executions, attempts, jobs that
            took more than one attempt.
        """
        rows = self.store.execute(AUDIT).get_all()
        transaction.abort()
        problems = []
        statuses = Counter()
        attempts = Counter()
        executions = 0
        for job_id, status, attempt_count, data, count, attempt in rows:
            data = json.loads(data or "{}")
            status = JobStatus.items[status]
            statuses[status.title] += 1
            attempts[attempt_count] += 1
            executions += count
            failing = data.get("raise_") == "error"
            expected = JobStatus.FAILED if failing else JobStatus.COMPLETED
            expected_count = int(bool(data.get("record")) and not failing)
            wrong = []
            if status is not expected:
                wrong.append("is %s, not %s" % (status.title, expected.title))
            if count != expected_count:
                wrong.append("has %d committed executions, not %d"
                             % (count, expected_count))
            elif count and attempt != attempt_count:
                wrong.append("was recorded by attempt %d but its last"
                             " attempt is %d" % (attempt, attempt_count))
            if attempt_count < max(1, count):
                wrong.append("counts %d attempts" % attempt_count)
            if wrong:
                problems.append("job %d %s" % (job_id, "; ".join(wrong)))
        if len(problems) > max_problems:
            problems[max_problems:] = [
                "... and %d more" % (len(problems) - max_problems)]
        summary = {
            "jobs": len(rows),
            "statuses": dict(statuses),
            "executions": executions,
            "attempts": sum(n * k for n, k in attempts.items()),
            "jobs run more than once": sum(
                k for n, k in attempts.items() if n > 1),
        }
        return problems, summary

    def failed_without_oops(self, error_dir):
        """The ids of FAILED jobs that no OOPS report in `error_dir` names."""
        failed = {row[0] for row in self.store.execute(
            "SELECT id FROM job WHERE status = ?",
            (JobStatus.FAILED.value,))}
        transaction.abort()
        # iter_reports skips what a killed writer left half-written.
        reported = {report.get("job_id") for report in iter_reports(error_dir)}
        return sorted(failed - reported)
