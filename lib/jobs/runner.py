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
    "SectionError",
    "find_section_source",
]

import logging
import sys
from collections import Counter, namedtuple

import transaction
from storm.exceptions import DatabaseError as StormDatabaseError
from storm.exceptions import DisconnectionError
from zope.component import queryUtility
from zope.dottedname.resolve import resolve
from zope.interface import implementer
from zope.interface.interface import InterfaceClass

from jobs import schema
from jobs.config import get_config
from jobs.database import (
    Savepoint,
    collect_garbage,
    connect,
    get_store,
    set_role,
    uri_without_password,
)
from jobs.errorlog import ErrorReporter, Redactor
from jobs.errors import (
    ConfigError,
    DatabaseError,
    DispatchError,
    JobsError,
    LeaseHeld,
    LostRunner,
    SchemaError,
    StaleJob,
    SuspendJobException,
)
from jobs.interfaces.job import JobStatus
from jobs.interfaces.runner import IJobRunner
from jobs.logtail import LogTail
from jobs.model.job import Job
from jobs.model.runnable import BaseRunnableJob
from jobs.registration import register_components
from jobs.scripts.base import Script

EXIT_SECTION_ERROR = 2


def job_str(job):
    """``<repr> (ID n)``: how log lines name a job."""
    return "%r (ID %d)" % (job, job.job_id)


def claimed_job_str(job):
    """``Class (ID n)``: how the per-job lines of a claimed batch (workers,
    ``--batch-size``, Celery) name a job. A job's repr usually shows its
    status, which would load each job row the fast path leaves unloaded
    (a query a job, and the batched outcome UPDATE lost: 7x slower at
    INFO, `benchmarks/throughput.py` group-commit-info)."""
    return "%s (ID %d)" % (type(job).__name__, job.job_id)


class LazyJobStr:
    """`job_str(job)`, computed only if a log record is formatted: it may
    cost a query, which a discarded DEBUG or INFO line should not."""

    __slots__ = ("job", "status", "claimed")

    def __init__(self, job, status=False, claimed=False):
        self.job = job
        self.status = status
        self.claimed = claimed

    def __str__(self):
        try:
            if self.status:
                return self.job.status.title
            if self.claimed:
                return claimed_job_str(self.job)
            return job_str(self.job)
        except DisconnectionError:
            # The line comes after a commit, when the job's columns must
            # be read again; logging would print a traceback for this.
            # The run notices the lost connection at its next statement.
            return "<%s: the database connection was lost>" % (
                type(self.job).__name__)


@implementer(IJobRunner)
class JobRunner:
    """Runs jobs one after another in this process.

    :param jobs: an iterable of ready `IRunnableJob`: `runAll` takes
        each one's lease. (`runJobHandleError` also runs a job this
        process claimed: RUNNING, its attempt started; see
        `IJobSource.claimReady`.)
    :param logger: where the job lines go (default: this module's logger).
    :param error_reporter: the `ErrorReporter` that files OOPS reports
        (default: one built from the current configuration).
    :param group_commit: when true, outcomes are not committed job by
        job: each job runs inside a SAVEPOINT (its failure rolls back only
        its own work) and the caller commits the group.
    :param keep_jobs: when false, `completed_jobs` and `incomplete_jobs`
        hold a `JobRecord` (type name, id) instead of each job. Long runs
        need this: every commit makes Storm revisit every object still
        referenced, so keeping thousands of jobs makes each commit slower.
    :param requeue_error_types: exceptions that end an attempt with no
        outcome: the job's work is rolled back and it goes back to WAITING
        at once (the attempt counts), its id in `requeued`, for the caller
        to hand it to another runner. A Celery worker gives the soft time
        limit, to move the job to its slow queue.
    """

    def __init__(self, jobs, logger=None, error_reporter=None,
                 group_commit=False, keep_jobs=True, log_level=logging.INFO,
                 log_tail_chars=8000, requeue_error_types=()):
        self.jobs = jobs
        self.logger = logger or logging.getLogger(__name__)
        self.error_reporter = error_reporter or default_error_reporter()
        self.group_commit = group_commit
        self.keep_jobs = keep_jobs
        self.log_tail = None
        # What the running job logs; a caller running many jobs may hold
        # it attached around all of them (`with runner.tail:`).
        self.tail = LogTail(log_level, log_tail_chars)
        self.completed_jobs = []
        self.incomplete_jobs = []
        self.oops_ids = []
        # Group commit: (job_id, attempt, log tail) of completed jobs whose
        # outcomes `commit_group` records.
        self.deferred = []
        # (error, report) of the failure runJob filed before committing
        # FAILED; runJobHandleError notifies it instead of filing again.
        self._filed = None
        self.requeue_error_types = tuple(requeue_error_types)
        self.requeued = []

    @classmethod
    def fromReady(cls, source, logger=None, error_reporter=None, **kwargs):
        """Return a runner over `source`'s ready jobs."""
        return cls(source.iterReady(), logger, error_reporter, **kwargs)

    def _record(self, job, completed):
        if self.keep_jobs:
            entry = job
        else:
            # A claim knows the id: no reload of a row the commit expired.
            claim = getattr(job, "_claim", None)
            entry = JobRecord(type(job).__name__, claim.job_id
                              if claim is not None else job.job_id)
        (self.completed_jobs if completed else self.incomplete_jobs).append(
            entry)

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
        self.logger.debug("Trying to acquire lease for job in state %s",
                          LazyJobStr(job, status=True))
        try:
            job.acquireLease()
        except LeaseHeld:
            transaction.abort()
            self.logger.info("Could not acquire lease for %s", job_str(job))
            self._record(job, completed=False)
            return False
        return True

    def runAll(self):
        """See `IJobRunner`."""
        for count, job in enumerate(self.jobs, 1):
            if self.acquireLease(job):
                self.runJobHandleError(job)
            if count % 50 == 0:
                collect_garbage()

    def runJob(self, job):
        """See `IJobRunner`."""
        self._filed = None
        claim = getattr(job, "_claim", None)
        if claim is not None and claim.recorded:
            claim = None
        attempt = claim.attempt if claim is not None else job.job._attempt
        self.log_tail = None
        if attempt is not None:
            self.logger.info("Running %s, attempt %d",
                             LazyJobStr(job, claimed=True), attempt)
        else:
            self.logger.info("Running %s in status %s", LazyJobStr(job),
                             LazyJobStr(job, status=True))
        savepoint = None
        try:
            if attempt is None:
                if job.status is JobStatus.RUNNING:
                    self._reclaim(job)
                # Commit 1: the lease, RUNNING and the attempt count
                # become visible together, so a crash from here on leaves
                # an orphan that the lease's expiry hands to another
                # runner. (A claimed job had this commit in its batch.)
                job.start(manage_transaction=True)
            if self.group_commit:
                savepoint = Savepoint(get_store())
            self._run(job, savepoint, claim, claimed=attempt is not None)
        except StaleJob as e:
            # Another runner reclaimed the job after our lease expired:
            # its attempt owns the outcome, ours is discarded.
            self._abort(savepoint)
            self.logger.info("%s", e)
            self._record(job, completed=False)
        except DisconnectionError:
            # The database went away, not the job's fault: like a crash,
            # the attempt is lost (its work rolled back with the
            # connection) and the job runs again once its lease expires.
            # Failing it would record the outage as the job's error, on
            # a reconnection that may not even exist.
            raise
        except Exception as error:
            self._record(job, completed=False)
            try:
                # Abort before touching the row (or loading it): a failed
                # SQL statement poisons the transaction, and the job's
                # work must go anyway.
                self._abort(savepoint)
                if not isinstance(error, job.user_error_types):
                    # The report is written before FAILED is committed: a
                    # runner killed in between leaves a report for a job
                    # that runs again (a duplicate at worst), never a
                    # FAILED job without its report.
                    self._filed = (error, self._file_oops(
                        job, (type(error), error, error.__traceback__)))
                self._attach_log_tail(job)
                job.fail(manage_transaction=savepoint is None)
            except StaleJob as e:
                self._abort(savepoint)
                self.logger.info("%s", e)
                return
            raise

    def _run(self, job, savepoint, claim, claimed=False):
        """Run a started job and record its outcome (see the table).

        :param claimed: the job came claimed (see `claimed_job_str`).
        """
        commit = savepoint is None
        tail = self.tail
        try:
            try:
                with tail:
                    tail.start()
                    job.run()
                    if savepoint is not None:
                        # The job's SQL runs now, inside its savepoint.
                        savepoint.store.flush()
            finally:
                # Whatever the outcome, its UPDATE records what the job
                # logged (no extra statement), and so does its OOPS.
                tail.stop()
                text = tail.text()
                if text is not None:
                    text = self.error_reporter.redactor.text(text)
                self.log_tail = text
        except job.retry_error_types as e:
            if job.attempt_count > job.max_retries:
                raise
            self.logger.info(
                "Scheduling retry due to %s: %s.", type(e).__name__, e)
            if savepoint is not None:
                savepoint.release()
            self._attach_log_tail(job)
            job.queue(manage_transaction=commit)
            self._record(job, completed=False)
        except self.requeue_error_types as e:
            self.logger.info("Giving %s back to the queue after %s.",
                             LazyJobStr(job), type(e).__name__)
            # The row's own queue(): no retry delay, the job is due now.
            if savepoint is not None:
                savepoint.rollback()
                job.job.queue()
            else:
                job.job.queue(manage_transaction=True, abort_transaction=True)
            self._record(job, completed=False)
            self.requeued.append(job.job.id)
        except SuspendJobException:
            self.logger.debug("Job suspended itself")
            if savepoint is not None:
                savepoint.release()
            self._attach_log_tail(job)
            job.suspend(manage_transaction=commit)
            self._record(job, completed=False)
        else:
            if savepoint is not None:
                savepoint.release()
            if claim is not None and not getattr(job, "job_row_loaded", True):
                self._complete_claimed(job, claim, commit)
            else:
                self._attach_log_tail(job)
                # Commit 2 (unless grouped): the job's work and COMPLETED,
                # atomically.
                job.complete(manage_transaction=commit)
            self._record(job, completed=True)
            self.logger.info("Completed %s.", LazyJobStr(job, claimed=claimed))

    def _attach_log_tail(self, job):
        """Give the job row the run's log tail, for its outcome's UPDATE."""
        job.job._log_tail = self.log_tail

    def _complete_claimed(self, job, claim, commit):
        """Record COMPLETED for a claimed job whose row was never loaded:
        one statement, or none until `commit_group` in a group."""
        claim.recorded = True
        outcome = (claim.job_id, claim.attempt, self.log_tail)
        if not commit:
            self.deferred.append(outcome)
            return
        if Job.complete_claimed(get_store(), [outcome]) != 1:
            raise StaleJob(
                "Job %d changed under this runner (attempt %d); this"
                " attempt's outcome was not recorded."
                % (claim.job_id, claim.attempt))
        # Commit 2: the job's work and COMPLETED, atomically.
        transaction.commit()

    def commit_group(self):
        """Record the group's deferred outcomes in one statement, commit.

        The batch runner locked the group's rows (`ClaimedJobs.lock`), so
        no outcome can be refused; if one is all the same, the group's
        work is rolled back and its jobs run again once their leases
        expire (at least once, as after a crash).
        """
        deferred, self.deferred = self.deferred, []
        if deferred and Job.complete_claimed(
                get_store(), deferred) != len(deferred):
            transaction.abort()
            lost = {job_id for job_id, _, _ in deferred}
            self.completed_jobs = [entry for entry in self.completed_jobs
                                   if entry.job_id not in lost]
            self.logger.warning(
                "The outcomes of a group of %d jobs could not be recorded"
                " (a row changed under this runner): the group was rolled"
                " back; its jobs run again when their leases expire.",
                len(deferred))
            return
        transaction.commit()

    def _abort(self, savepoint):
        if savepoint is not None:
            savepoint.rollback()
        else:
            transaction.abort()

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
        except DisconnectionError:
            raise  # see runJob: the caller's run is over
        except job.user_error_types as e:
            self.logger.info(
                "%s failed with user error %r.", job_str(job), e)
            self._notify(job, job.notifyUserError, e)
            return None
        except Exception as error:
            filed, self._filed = self._filed, None
            if filed is not None and filed[0] is error:
                report = filed[1]
            else:
                report = self._file_oops(job, sys.exc_info())
            self._notify(job, job.notifyOops, report)
            return report
        finally:
            if not self.group_commit:
                # Reads after the last commit (a log line naming the job)
                # opened a transaction: end it, so that an idle runner
                # holds nothing (on SQLite, not the write lock).
                transaction.abort()
        return None

    def _file_oops(self, job, exc_info):
        """Write the OOPS report of `job`'s failure; return it."""
        report = self.error_reporter.raising(
            exc_info, job.getOopsVars(), job_id=job.job_id,
            job_type=type(job).__name__,
            operation=job.getOperationDescription(),
            log_tail=self.log_tail)
        self._record_oops(report)
        return report

    def _record_oops(self, report):
        if report.get("id"):
            self.logger.info("Job resulted in OOPS: %s", report["id"])
            self.oops_ids.append(report["id"])

    def _notify(self, job, notify, argument):
        """Call `notify`; if it fails, file an OOPS for that failure.

        A notification may not commit; in a group, what it wrote goes
        with the group's commit.
        """
        savepoint = Savepoint(get_store()) if self.group_commit else None
        try:
            notify(argument)
            if savepoint is not None:
                savepoint.release()
        except Exception:
            self._abort(savepoint)
            report = self.error_reporter.raising(
                sys.exc_info(), job.getOopsVars(), job_id=job.job_id,
                job_type=type(job).__name__,
                operation=job.getOperationDescription())
            self._record_oops(report)


class JobRecord(namedtuple("JobRecord", "job_type job_id")):
    """What a runner that does not keep its jobs remembers of one."""


def job_type_name(entry):
    """The job type's name of a runner's list entry (job or record)."""
    return entry.job_type if isinstance(entry, JobRecord) else type(
        entry).__name__


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


def find_section_source(config, name, interface=None):
    """Return the source utility of job section `name`.

    :param interface: the source interface (or its dotted name); default
        the section's ``source_interface``.
    :raises SectionError: naming the section and the cause.
    """
    try:
        settings = None if interface else config.job_section(name)
        if settings is not None and settings.tasks:
            from jobs.tasks import section_source
            return section_source(config, settings)
        dotted = interface or settings.source_interface
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


class JobCronScript(Script):
    """Run the ready jobs of one or more job sections.

    Each section runs in turn, under its own lock file and its own
    database role (``dbuser``; ignored on SQLite). With ``--worker`` it
    keeps running (see `jobs.runners.worker`).

    :param runner_class: the `IJobRunner` class of in-process runs.
    :param commandline_config: take the sections from the command line;
        otherwise a subclass sets `config_name` and `source_interface`.
    """

    usage = "%(prog)s [options] SECTION [SECTION ...]"
    description = (
        "Run the ready jobs of each job SECTION of the configuration, one\n"
        "section after another, each under its own lock file and its own\n"
        "database role (dbuser; ignored on SQLite), then exit. With\n"
        "--worker, keep running: wake on NOTIFY (PostgreSQL) or poll.")
    epilog = (
        "Exit status: 0 when every section ran (a job's failure is an OOPS\n"
        "report, not an exit status); 1 for a usage error or when a\n"
        "section's lock file is held by another run; 2 when a section is\n"
        "unknown, its source_interface cannot be imported, no utility\n"
        "provides it, or the database connection was lost during its run\n"
        "(the other sections still run). A worker exits 0 after SIGTERM or\n"
        "SIGINT once its running job has finished.\n\n"
        "Configuration: JOBS_CONFIG names the instance (default\n"
        "development); JOBS_DATABASE_URI overrides [database] uri.")

    config_name = None
    source_interface = None

    # The execution back-ends, by the name a section's runner_class
    # gives; looked up when used (they build on this module).
    BACKENDS = {
        "ProcessJobRunner": "jobs.runners.process.ProcessJobRunner",
        "BatchRunner": "jobs.runners.batch.BatchRunner",
        "Worker": "jobs.runners.worker.Worker",
        "CelerySweep": "jobs.runners.celery.sweep",
    }

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
        self.parser.add_argument(
            "--worker", action="store_true",
            help="Keep running: serve the sections until SIGTERM/SIGINT.")
        self.parser.add_argument(
            "--max-jobs", type=int, metavar="N",
            help="Stop claiming after N jobs per section (cron mode).")
        self.parser.add_argument(
            "--max-seconds", type=float, metavar="T",
            help="Stop claiming after T seconds per section (cron mode).")
        self.parser.add_argument(
            "--batch-size", type=int, metavar="N",
            help="Claim up to N jobs per statement (default: the section's"
                 " batch_size; workers claim at least 1).")
        self.parser.add_argument(
            "--celery-sweep", action="store_true",
            help="Run no job: send again to Celery the ready jobs of each"
                 " (celery_dispatch) section that no worker claimed within"
                 " its celery_sweep_grace.")
        self.parser.add_argument(
            "--processes", type=int, metavar="N",
            help="Run each job in a pool of N child processes"
                 " (ProcessJobRunner).")

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

    def make_redactor(self):
        """Log lines (stderr, --log-file) hide what OOPS reports hide."""
        try:
            return Redactor(get_config().redact).text
        except ConfigError:
            return None

    def lock_and_run(self):
        """Run every section, each under its own lock; return the code."""
        return self.run()

    def main(self):
        try:
            config = self.config = get_config()
            register_components(config)
            connect(config.database_uri)
            self.check_schema(get_store())
        except (ConfigError, DatabaseError, SchemaError) as e:
            self.logger.error("%s", e)
            return EXIT_SECTION_ERROR
        if self.options.worker:
            return self.run_worker(config)
        if self.options.celery_sweep:
            return max(self.sweep_section(config, name)
                       for name in self.section_names)
        return max(self.run_section(config, name)
                   for name in self.section_names)

    def run_worker(self, config):
        """Serve the sections until stopped; return the exit status."""
        sections = []
        for name in self.section_names:
            try:
                self.find_source(config, name)
            except SectionError as e:
                self.logger.error("%s", e)
                return EXIT_SECTION_ERROR
            sections.append(name)
        first = self.section_settings(config, sections[0])
        worker = resolve(self.BACKENDS["Worker"])(
            self, sections, poll_interval=first.poll_interval,
            grace_period=first.grace_period)
        return worker.run()

    def section_settings(self, config, name):
        """The section's `JobSection`, or defaults for a custom script."""
        if name in config.job_section_names:
            return config.job_section(name)
        return _DefaultSection(name)

    def find_source(self, config, name):
        """Return the source utility for section `name` (or for this
        script's own `source_interface`).

        :raises SectionError: naming the section and the cause.
        """
        return find_section_source(config, name, self.source_interface)

    def run_section(self, config, name):
        """Run section `name`'s ready jobs under its lock; return its code."""
        opened = self._open_section(config, name, name)
        if isinstance(opened, int):
            return opened
        source, settings, lock = opened
        try:
            code, _ = self._run_as(settings, source, self._execute)
            return code
        except DisconnectionError as e:
            # A restart or a killed connection: one line, not a
            # traceback. The jobs this run had started stay RUNNING
            # until their leases expire; then the next run takes them.
            transaction.abort()
            self.logger.error(
                "Section %s: lost the database connection (%s); its"
                " unfinished jobs run again when their leases expire.",
                name, " ".join(str(e).split()) or type(e).__name__)
            return EXIT_SECTION_ERROR
        finally:
            lock.release()

    def sweep_section(self, config, name):
        """Send section `name`'s overdue jobs to Celery again (under a lock
        of its own, so a cron run of the section does not block it);
        return the exit code: 1 when the broker cannot be reached."""
        opened = self._open_section(
            config, name, "%s-celery-sweep" % name, celery=True)
        if isinstance(opened, int):
            return opened
        source, settings, lock = opened
        sweep = resolve(self.BACKENDS["CelerySweep"])

        def execute(settings, source, reporter):
            return sweep(source, settings, self.logger, reporter, config)

        try:
            code, _ = self._run_as(settings, source, execute)
            return code
        except DispatchError as e:
            transaction.abort()
            self.logger.error("Section %s: %s.", name, e)
            return 1
        finally:
            lock.release()

    def _open_section(self, config, name, lock_name, celery=False):
        """Find section `name`'s source and settings and take the lock
        `lock_name`: ``(source, settings, lock)``, or the exit code after
        logging why not (2: the section cannot run; 1: the lock is held).

        :param celery: the section must send its jobs to Celery.
        """
        try:
            source = self.find_source(config, name)
            settings = self.section_settings(config, name)
        except (SectionError, ConfigError) as e:
            self.logger.error("%s", e)
            return EXIT_SECTION_ERROR
        if celery and not getattr(settings, "celery_dispatch", False):
            self.logger.error(
                "Section %s does not send its jobs to Celery (celery_dispatch"
                " is false): nothing to sweep.", name)
            return EXIT_SECTION_ERROR
        try:
            lock = self.lock(self.lock_path(config.lock_dir, lock_name))
        except OSError as e:
            self.logger.error("Section %s: cannot create its lock file in"
                              " %s: %s", name, config.lock_dir,
                              e.strerror or e)
            return EXIT_SECTION_ERROR
        if lock is None:
            return 1
        return source, settings, lock

    def run_section_pass(self, name, should_stop):
        """One worker pass over section `name` (no lock file: workers run
        side by side). Return ``(exit code, jobs started)``."""
        config = self.config
        source = self.find_source(config, name)
        settings = self.section_settings(config, name)

        def execute(settings, source, reporter):
            return self._execute(settings, source, reporter,
                                 should_stop=should_stop, worker=True)

        return self._run_as(settings, source, execute)

    def _run_as(self, settings, source, execute):
        """Run `execute` connected as the section's database role."""
        try:
            set_role(settings.dbuser)
        except DatabaseError as e:
            transaction.abort()
            self._check_reachable()
            self.logger.error(
                "Section %s: cannot run as database role %s (see `jobs db"
                " roles`): %s",
                settings.name, settings.dbuser, e)
            return EXIT_SECTION_ERROR, 0
        try:
            reporter = default_error_reporter(settings.name)
            with source.contextManager():
                started = execute(settings, source, reporter)
            return 0, started
        finally:
            set_role(None)

    @staticmethod
    def _check_reachable():
        """Raise `DisconnectionError` when the database cannot be reached
        as the login role either: then the role is not at fault (a worker
        backs off and retries; a cron run reports a lost database)."""
        try:
            get_store().execute("SELECT 1")
        except (DatabaseError, StormDatabaseError) as e:
            raise DisconnectionError(str(e)) from None
        finally:
            transaction.abort()

    def _execute(self, settings, source, reporter, should_stop=None,
                 worker=False):
        """Run the section's jobs with the back-end its settings ask for;
        log the summary; return the number of jobs started."""
        options = self.options
        processes = options.processes or (
            settings.processes if settings.runner_class == "ProcessJobRunner"
            else 0)
        batch_size = (options.batch_size if options.batch_size is not None
                      else settings.batch_size)
        if processes:
            runner = resolve(self.BACKENDS["ProcessJobRunner"])(
                source, self.config, settings, processes, self.logger,
                reporter, batch_size=max(1, batch_size),
                max_jobs=options.max_jobs, max_seconds=options.max_seconds,
                should_stop=should_stop)
            runner.runAll()
            started = runner.started
        elif (batch_size or worker or settings.group_commit
              or options.max_jobs is not None
              or options.max_seconds is not None):
            batch = resolve(self.BACKENDS["BatchRunner"])(
                source, self.logger, reporter, batch_size=max(1, batch_size),
                group_commit=settings.group_commit,
                max_jobs=options.max_jobs, max_seconds=options.max_seconds,
                should_stop=should_stop, lease_duration=settings.lease_seconds,
                log_level=settings.log_level,
                log_tail_chars=settings.log_tail_chars)
            started = batch.run()
            runner = batch.runner
            if batch.budget_reached:
                self.logger.info("Budget reached: stopped claiming.")
        else:
            runner = self.runner_class.fromReady(
                source, self.logger, reporter, keep_jobs=False,
                log_level=settings.log_level,
                log_tail_chars=settings.log_tail_chars)
            runner.runAll()
            started = len(runner.completed_jobs) + len(runner.incomplete_jobs)
        if started or not worker:
            self.log_summary(runner)
        return started

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
                % (uri_without_password(get_config().database_uri),
                   " ".join(str(e).split()))
            ) from None
        finally:
            transaction.abort()

    def log_summary(self, runner):
        """Log ``Ran n <Class> jobs.`` and ``n <Class> jobs did not complete.``"""
        completed = Counter(map(job_type_name, runner.completed_jobs))
        incomplete = Counter(map(job_type_name, runner.incomplete_jobs))
        if not completed and not incomplete:
            self.logger.info("No jobs to run.")
        for class_name, count in sorted(completed.items()):
            self.logger.info("Ran %d %s jobs.", count, class_name)
        for class_name, count in sorted(incomplete.items()):
            self.logger.info("%d %s jobs did not complete.", count, class_name)


class _DefaultSection:
    """The settings of a custom script's section that the config lacks."""

    dbuser = None
    runner_class = "JobRunner"
    batch_size = 0
    group_commit = 0
    poll_interval = 5.0
    grace_period = 30.0
    processes = 2
    memory_limit = None
    lease_seconds = None
    log_level = logging.INFO
    log_tail_chars = 8000

    def __init__(self, name):
        self.name = name
