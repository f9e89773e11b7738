"""The job lifecycle: `JobRunner` runs jobs and records their outcomes;
`JobCronScript` runs the ready jobs of configured sections.

Outcome of ``run()`` (DESIGN.md):

=====================================  ==========  ==============  =====
run()                                  status      job's changes   OOPS
=====================================  ==========  ==============  =====
returns                                COMPLETED   committed       no
retry error, attempts left             WAITING     committed       no
retry error, no attempts left          FAILED      rolled back     yes
user error                             FAILED      rolled back     no
SuspendJobException                    SUSPENDED   committed       no
anything else                          FAILED      rolled back     yes
=====================================  ==========  ==============  =====

A successful job costs two commits beyond its own: one publishes the
claim (lease, RUNNING, attempt count), one records COMPLETED together with
the job's work. Launchpad needs four.
"""

__all__ = [
    "BaseRunnableJob",
    "JobCronScript",
    "JobRunner",
]

import logging
import sys
from collections import Counter

import transaction
from zope.component import queryUtility
from zope.dottedname.resolve import resolve
from zope.interface import implementer
from zope.interface.interface import InterfaceClass

from jobs import schema
from jobs.config import get_config
from jobs.database import connect, get_store, set_role
from jobs.errorlog import ErrorReporter
from jobs.errors import (
    ConfigError,
    DatabaseError,
    JobsError,
    LeaseHeld,
    LostRunner,
    SchemaError,
    StaleJob,
    SuspendJobException,
)
from jobs.interfaces.job import JobStatus
from jobs.interfaces.runner import IJobRunner
from jobs.model.runnable import BaseRunnableJob
from jobs.registration import register_components
from jobs.scripts.base import Script

EXIT_SECTION_ERROR = 2


def job_str(job):
    """``<repr> (ID n)``: how log lines name a job."""
    return "%r (ID %d)" % (job, job.job_id)


@implementer(IJobRunner)
class JobRunner:
    """Runs jobs one after another in this process.

    :param jobs: an iterable of `IRunnableJob`.
    :param logger: where the job lines go (default: this module's logger).
    :param error_reporter: the `ErrorReporter` that files OOPS reports
        (default: one built from the current configuration).
    """

    def __init__(self, jobs, logger=None, error_reporter=None):
        self.jobs = jobs
        self.logger = logger or logging.getLogger(__name__)
        self.error_reporter = error_reporter or default_error_reporter()
        self.completed_jobs = []
        self.incomplete_jobs = []
        self.oops_ids = []

    @classmethod
    def fromReady(cls, source, logger=None, error_reporter=None):
        """Return a runner over `source`'s ready jobs."""
        return cls(source.iterReady(), logger, error_reporter)

    @classmethod
    def runFromSource(cls, source, logger=None, error_reporter=None):
        """Run `source`'s ready jobs inside its context manager.

        :return: the runner, for its lists.
        """
        with source.contextManager():
            runner = cls.fromReady(source, logger, error_reporter)
            runner.runAll()
        return runner

    def acquireLease(self, job):
        """Take `job`'s lease; on failure log, count it, and return False."""
        self.logger.debug(
            "Trying to acquire lease for job in state %s", job.status.title)
        try:
            job.acquireLease()
        except LeaseHeld:
            transaction.abort()
            self.logger.info("Could not acquire lease for %s", job_str(job))
            self.incomplete_jobs.append(job)
            return False
        return True

    def runAll(self):
        """See `IJobRunner`."""
        for job in self.jobs:
            if not self.acquireLease(job):
                continue
            self.runJobHandleError(job)

    def runJob(self, job):
        """See `IJobRunner`."""
        self.logger.info(
            "Running %s in status %s", job_str(job), job.status.title)
        # Bound now: after a failed statement the job's attributes may
        # not be readable, and fail() must still be callable.
        fail = job.fail
        try:
            if job.status is JobStatus.RUNNING:
                self._reclaim(job)
            # Commit 1: the lease, RUNNING and the attempt count become
            # visible together, so a crash from here on leaves an orphan
            # that the lease's expiry hands to another runner.
            job.start(manage_transaction=True)
            try:
                job.run()
            except job.retry_error_types as e:
                if job.attempt_count > job.max_retries:
                    raise
                self.logger.info(
                    "Scheduling retry due to %s: %s.", type(e).__name__, e)
                job.queue(manage_transaction=True)
                self.incomplete_jobs.append(job)
            except SuspendJobException:
                self.logger.debug("Job suspended itself")
                job.suspend(manage_transaction=True)
                self.incomplete_jobs.append(job)
            else:
                # Commit 2: the job's work and COMPLETED, atomically.
                job.complete(manage_transaction=True)
                self.completed_jobs.append(job)
                self.logger.info("Completed %s.", job_str(job))
        except StaleJob as e:
            # Another runner reclaimed the job after our lease expired:
            # its attempt owns the outcome, ours is discarded.
            transaction.abort()
            self.logger.info("%s", e)
            self.incomplete_jobs.append(job)
        except Exception:
            self.incomplete_jobs.append(job)
            try:
                fail(manage_transaction=True)
            except StaleJob as e:
                transaction.abort()
                self.logger.info("%s", e)
                return
            raise

    def _reclaim(self, job):
        """Take over `job`, whose runner died (RUNNING, lease expired).

        The lost attempt counts. With attempts left, the job simply
        starts again; with none, it fails with `LostRunner` (an OOPS).
        """
        lost_attempt = job.attempt_count
        self.logger.info(
            "%s was left RUNNING by a lost runner (attempt %d).",
            job_str(job), lost_attempt)
        if lost_attempt > job.max_retries:
            job.job._attempt = lost_attempt
            raise LostRunner(
                "The runner of attempt %d was lost (its lease expired while"
                " the job was RUNNING) and no attempts are left."
                % lost_attempt)

    def runJobHandleError(self, job):
        """See `IJobRunner`."""
        try:
            self.runJob(job)
        except job.user_error_types as e:
            self.logger.info(
                "%s failed with user error %r.", job_str(job), e)
            self._notify(job, job.notifyUserError, e)
            return None
        except Exception:
            return self._oops(job, sys.exc_info())
        return None

    def _oops(self, job, exc_info):
        report = self.error_reporter.raising(
            exc_info, job.getOopsVars(), job_id=job.job_id,
            job_type=type(job).__name__,
            operation=job.getOperationDescription())
        self._record_oops(report)
        self._notify(job, job.notifyOops, report)
        return report

    def _record_oops(self, report):
        if report.get("id"):
            self.logger.info("Job resulted in OOPS: %s", report["id"])
            self.oops_ids.append(report["id"])

    def _notify(self, job, notify, argument):
        """Call `notify`; if it fails, file an OOPS for that failure."""
        try:
            notify(argument)
            # A notification may not commit; drop anything it wrote.
            transaction.abort()
        except Exception:
            transaction.abort()
            report = self.error_reporter.raising(
                sys.exc_info(), job.getOopsVars(), job_id=job.job_id,
                job_type=type(job).__name__,
                operation=job.getOperationDescription())
            self._record_oops(report)


def default_error_reporter(section=None):
    """An `ErrorReporter` from the current configuration.

    The reporter is ``<oops_prefix>-<section>``, or the prefix alone.
    """
    config = get_config()
    reporter = config.oops_prefix
    if section:
        reporter = "%s-%s" % (reporter, section)
    return ErrorReporter(config.error_dir, reporter, config.redact)


class SectionError(JobsError):
    """A job section cannot be run (configuration or registration)."""


class JobCronScript(Script):
    """Run the ready jobs of one or more job sections, then exit.

    Each section runs in turn, under its own lock file and its own
    database role (``dbuser``; ignored on SQLite).

    :param runner_class: the `IJobRunner` class to use.
    :param commandline_config: take the sections from the command line;
        otherwise a subclass sets `config_name` and `source_interface`.
    """

    usage = "%(prog)s [options] SECTION [SECTION ...]"
    description = (
        "Run the ready jobs of each job SECTION of the configuration, one\n"
        "section after another, each under its own lock file and its own\n"
        "database role (dbuser; ignored on SQLite), then exit.")
    epilog = (
        "Exit status: 0 when every section ran (a job's failure is an OOPS\n"
        "report, not an exit status); 1 for a usage error or when a\n"
        "section's lock file is held by another run; 2 when a section is\n"
        "unknown, its source_interface cannot be imported, or no utility\n"
        "provides it (the other sections still run).\n\n"
        "Configuration: JOBS_CONFIG names the instance (default\n"
        "development); JOBS_DATABASE_URI overrides [database] uri.")

    config_name = None
    source_interface = None

    def __init__(self, runner_class=JobRunner, test_args=None, name=None,
                 commandline_config=False, logger=None):
        self.runner_class = runner_class
        self.commandline_config = commandline_config
        super().__init__(name or "run_jobs", test_args, logger)

    def add_my_options(self):
        if self.commandline_config:
            self.parser.add_argument(
                "sections", nargs="+", metavar="SECTION",
                help="A job section of the configuration.")

    @property
    def section_names(self):
        """The sections this run processes, in order."""
        if self.commandline_config:
            return self.options.sections
        return [self.config_name]

    def make_error_reporter(self):
        try:
            return default_error_reporter(self.name)
        except ConfigError:
            return None

    def lock_and_run(self):
        """Run every section, each under its own lock; return the code."""
        return self.run()

    def main(self):
        try:
            config = get_config()
            register_components(config)
            connect(config.database_uri)
            self.check_schema(get_store())
        except (ConfigError, DatabaseError, SchemaError) as e:
            self.logger.error("%s", e)
            return EXIT_SECTION_ERROR
        return max(self.run_section(config, name)
                   for name in self.section_names)

    def find_source(self, config, name):
        """Return the source utility for section `name`.

        :raises SectionError: naming the section and the cause.
        """
        try:
            dotted = self.source_interface or config.job_section(
                name).source_interface
        except ConfigError as e:
            raise SectionError(str(e)) from None
        if isinstance(dotted, InterfaceClass):
            interface = dotted
        else:
            try:
                interface = resolve(dotted)
            except (ImportError, AttributeError, ValueError) as e:
                raise SectionError(
                    "Section %s: cannot import source_interface %s: %s"
                    % (name, dotted, e)) from None
        if not isinstance(interface, InterfaceClass):
            raise SectionError(
                "Section %s: source_interface %s is not an interface."
                % (name, dotted))
        source = queryUtility(interface)
        if source is None:
            raise SectionError(
                "Section %s: no utility is registered for %s (see"
                " [components] register)." % (name, interface.__identifier__))
        return source

    def run_section(self, config, name):
        """Run section `name`'s ready jobs; return its exit code."""
        try:
            source = self.find_source(config, name)
            dbuser = (config.job_section(name).dbuser
                      if name in config.job_section_names else None)
        except (SectionError, ConfigError) as e:
            self.logger.error("%s", e)
            return EXIT_SECTION_ERROR
        lock = self.lock(self.lock_path(config.lock_dir, name))
        if lock is None:
            return 1
        store = get_store()
        try:
            try:
                set_role(store, dbuser)
            except Exception as e:
                transaction.abort()
                self.logger.error(
                    "Section %s: cannot run as database role %s: %s",
                    name, dbuser, str(e).strip())
                return EXIT_SECTION_ERROR
            runner = self.runner_class.runFromSource(
                source, self.logger, default_error_reporter(name))
            self.log_summary(runner)
            return 0
        finally:
            if dbuser is not None:
                set_role(store, None)
            lock.release()

    def check_schema(self, store):
        """Raise `SchemaError` when the framework's schema is missing or old.

        :raises DatabaseError: when the database cannot be reached.
        """
        try:
            schema.check(store)
        except SchemaError:
            raise
        except Exception as e:
            raise DatabaseError(
                "Cannot use the database %s: %s"
                % (get_config().database_uri, str(e).strip())) from None
        finally:
            transaction.abort()

    def log_summary(self, runner):
        """Log ``Ran n <Class> jobs.`` and ``n <Class> jobs did not complete.``"""
        completed = Counter(type(job).__name__ for job in runner.completed_jobs)
        incomplete = Counter(
            type(job).__name__ for job in runner.incomplete_jobs)
        if not completed and not incomplete:
            self.logger.info("No jobs to run.")
        for class_name, count in sorted(completed.items()):
            self.logger.info("Ran %d %s jobs.", count, class_name)
        for class_name, count in sorted(incomplete.items()):
            self.logger.info("%d %s jobs did not complete.", count, class_name)
