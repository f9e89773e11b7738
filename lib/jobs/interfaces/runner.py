"""The contract of a job runner: run a batch of jobs and record outcomes."""

__all__ = ["IJobRunner"]

from zope.interface import Attribute, Interface


class IJobRunner(Interface):
    """Runs a batch of `IRunnableJob` jobs and records each one's outcome.

    Built by a script (or a test) over an iterable of jobs, or over a
    source's ready jobs; `runAll` is called once.
    """

    completed_jobs = Attribute("List of the jobs that ended COMPLETED.")
    incomplete_jobs = Attribute(
        "List of the jobs that did not complete: failed, retried, "
        "suspended, or skipped because their lease was held.")
    oops_ids = Attribute("List of the ids (str) of the OOPS reports filed.")

    def runAll():
        """Run every job of the batch, one after another.

        A job's failure never stops the batch; a lost database does.
        :raises storm.exceptions.DisconnectionError: when the database
            connection is lost (see `runJob`); the jobs not yet run are
            left as they were.
        Commits per job.
        """

    def runJob(job):
        """Run one job whose lease is held, applying the outcome table.

        Records the job in `completed_jobs` or `incomplete_jobs`.
        :raises: the job's error when the job ended FAILED (after the row
            was marked FAILED and committed), so that the caller can report
            it; a retry, a suspension or a completion raise nothing.
        :raises storm.exceptions.DisconnectionError: when the database
            connection is lost (a restart, a terminated backend): the
            job's work is rolled back with the connection and the job is
            left RUNNING, to run again as a new attempt once its lease
            expires, as after a crash; it is not marked FAILED.
        Commits.
        """

    def runJobHandleError(job):
        """Run one job as `runJob` does, turning its failure into a report.

        A user error calls ``job.notifyUserError``; any other failure files
        an OOPS, calls ``job.notifyOops`` and records the id in `oops_ids`.
        :return: the OOPS report (dict), or None.
        :raises storm.exceptions.DisconnectionError: as `runJob`.
        Commits.
        """
