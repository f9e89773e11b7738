"""The contract of a job runner: run a source's jobs, record outcomes."""

__all__ = ["IJobRunner"]

from zope.interface import Attribute, Interface


class IJobRunner(Interface):
    """Runs jobs and records each attempt's outcome.

    Every back-end provides it — in this process (`jobs.runner.JobRunner`),
    in child processes (`jobs.runners.process.ProcessJobRunner`), and,
    through the in-process runner, workers and Celery — and is called the
    same way, Launchpad's: ``runner_class.runFromSource(source, logger,
    ...)``. The caller has already connected as the section's database
    role.
    """

    completed = Attribute(
        "{job class name: count} of the attempts that ended COMPLETED.")
    incomplete = Attribute(
        "{job class name: count} of the attempts that did not complete: "
        "failed, retried, suspended, cancelled, or fenced.")
    completed_jobs = Attribute(
        "List of the jobs that ended COMPLETED, when the runner keeps its "
        "jobs (the seed's ``JobRunner(jobs)``); else empty.")
    incomplete_jobs = Attribute(
        "List of the jobs that did not complete, when the runner keeps its "
        "jobs; else empty.")
    oops_ids = Attribute(
        "List of the ids (str) of the OOPS reports filed, the last 1,000 of"
        " them (a worker that runs for months keeps counters, not records).")
    started = Attribute("How many attempts this runner started (int).")

    def runFromSource(source, logger=None, error_reporter=None, **options):
        """Run `source`'s ready jobs until none is left; return the runner.

        Enters ``source.contextManager()`` around the run. Options: the
        section's `settings`, `should_stop` (a callable: when true, claimed
        jobs not started are given back and the run ends), `max_jobs`,
        `max_seconds`.

        :raises storm.exceptions.DisconnectionError: the database was lost;
            its ``unstarted_claims`` lists the claims committed and never
            started, for the caller to give back once it has reconnected.
        Commits (claims, outcomes).
        """

    def runAll():
        """Claim and run the runner's jobs until none is left.

        A job's failure never stops the run; a lost database does (see
        `runFromSource`). Commits.
        """

    def runJob(job):
        """Run `job`, which this process claimed (``job.attempt`` is its
        `jobs.attempt.Attempt`), and record the outcome the policy
        decides (`jobs.outcome.decide`).

        :return: the `jobs.outcome.Outcome`.
        :raises storm.exceptions.DisconnectionError: the database went
            away: the attempt is lost, its work rolled back with the
            connection; the job runs again as a new attempt once its lease
            expires, as after a crash.
        Commits (unless the runner commits outcomes in groups).
        """
