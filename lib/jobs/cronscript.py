"""`JobCronScript`: run the ready jobs of configured job sections.

``cronscripts/run_jobs.py SECTION...`` and ``jobs run SECTION...`` build
it. Each section runs in turn, under its own lock file and connected as
its own database role, with the back-end its settings choose: in this
process (`jobs.runner.JobRunner`) or in child processes
(`jobs.runners.process.ProcessJobRunner`), once (a cron run: a burst
that drains the queue) or until stopped (``--worker``,
`jobs.runners.worker.Worker`). Every back-end is called the same way:
``runFromSource(source, logger, ...)``. With ``--schedules`` a run first
enqueues the due ticks of the periodic schedules (`jobs.scheduler`), as
a worker does at each pass. A run has a row in the worker table while it
lasts (`jobs.presence`).
"""

__all__ = ["JobCronScript"]

import os
import signal

import transaction
from storm.exceptions import DatabaseError as StormDatabaseError
from storm.exceptions import DisconnectionError

from jobs import schema
from jobs.celery.sweep import CelerySweep
from jobs.config import get_config
from jobs.database import (
    connect,
    get_store,
    set_role,
    statement_timeout,
    uri_without_password,
)
from jobs.errorlog import Redactor
from jobs.errors import (
    ConfigError,
    DatabaseError,
    DispatchError,
    SchemaError,
    SectionError,
    UsageError,
)
from jobs.metrics.serve import add_metrics_options, serve_metrics_of
from jobs.presence import Presence
from jobs.registration import register_components
from jobs.runner import JobRunner
from jobs.runners.process import ProcessJobRunner
from jobs.runners.worker import Worker
from jobs.scheduler import Scheduler
from jobs.runoptions import DESCRIPTION, EPILOG, USAGE, add_run_options
from jobs.scripts.base import Script
from jobs.sections import error_reporter_for, find_section, overridden
from jobs.stopping import GracefulStop, exit_process, set_exit_grace

EXIT_SECTION_ERROR = 2


class JobCronScript(Script):
    """Run the ready jobs of one or more job sections.

    :param runner_class: the `IJobRunner` of in-process runs.
    :param commandline_config: take the sections from the command line;
        otherwise a subclass sets `config_name` and `source_interface`.
    """

    usage = USAGE
    description = DESCRIPTION
    epilog = EPILOG

    config_name = None
    source_interface = None

    def __init__(self, runner_class=JobRunner, test_args=None, name=None,
                 commandline_config=False, logger=None):
        self.runner_class = runner_class
        self.commandline_config = commandline_config
        self.scheduler = self.presence = None
        super().__init__(name or "run_jobs", test_args, logger)

    def add_my_options(self):
        add_run_options(self.parser, self.commandline_config)
        add_metrics_options(self.parser)

    @property
    def section_names(self):
        """The sections this run processes, in order."""
        if self.commandline_config:
            return self.options.sections
        return [self.config_name]

    def make_error_reporter(self):
        try:
            return error_reporter_for(self.name)
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

    def run_and_exit(self):
        """`lock_and_run`, then end the process with its exit status, even
        if job code left threads behind (`jobs.stopping.exit_process`):
        what ``run_jobs.py`` and ``jobs run`` do."""
        exit_process(self.lock_and_run(), logger=self.logger)

    def main(self):
        if not self.section_names and not self.options.schedules:
            raise UsageError("name at least one SECTION (or --schedules)")
        if self.options.worker and not self.section_names:
            raise UsageError("a worker serves at least one SECTION")
        try:
            config = self.config = get_config()
            register_components(config)
            connect(config.database_uri, config.session_settings,
            config.prepared_statements)
            self.check_schema(get_store())
        except (ConfigError, DatabaseError, SchemaError) as e:
            self.logger.error("%s", e)
            return EXIT_SECTION_ERROR
        set_exit_grace(_grace(config, self.section_names))
        self.scheduler = Scheduler(config, self.logger)
        try:  # this run's row in the worker table
            self.presence = Presence(
                "worker" if self.options.worker else "cron",
                self.section_names, config.workers, self.logger,
                self._stop_as_sigterm).start()
        except StormDatabaseError as e:
            self.logger.error("Cannot register in the worker table: %s",
                              " ".join(str(e).split()))
            return EXIT_SECTION_ERROR
        try:
            code = self.run_all(config)
            # On SQLite the OOPS report of a record logged outside any job
            # (an unknown section's ERROR) is indexed in the main store's
            # transaction (`jobs.oopsindex`): keep it, and free the write
            # lock that the worker row's deletion (through the side
            # connection) would wait for.
            transaction.commit()
            return code
        except BaseException:
            transaction.abort()
            raise
        finally:
            self.presence.stop()

    def run_all(self, config):
        """Serve or run the sections (and the schedules); return the exit
        status."""
        if self.options.worker:
            return self.run_worker(config)
        # SIGTERM and SIGINT (and `jobs cancel --worker`) stop a cron run
        # as they stop a worker: the running job finishes, the claimed
        # jobs not started go back.
        with GracefulStop(self.logger, _grace(config, self.section_names)
                          ) as stop:
            self.stop = stop
            codes = [self.scheduler.run_once() if self.options.schedules
                     else 0]
            run = (self.sweep_section if self.options.celery_sweep
                   else self.run_section)
            codes += [run(config, name) for name in self.section_names
                      if not stop()]
            return max(codes)

    def _stop_as_sigterm(self):
        """A stop request (`jobs cancel --worker`): SIGTERM to this
        process, when its graceful handler is in force (not while the run
        starts or ends: SIGTERM would kill it)."""
        if self.stop is not None and self.stop.active:
            os.kill(os.getpid(), signal.SIGTERM)

    def enqueue_schedules(self):
        """Enqueue the due ticks of the periodic schedules, as the login
        role (`jobs.scheduler`); return the number of jobs created. A
        worker calls it at each pass."""
        return self.scheduler.enqueue_due()

    def find_section(self, config, name):
        """Section `name` (or this script's own `source_interface`).

        :raises SectionError: naming the section and the cause.
        """
        return find_section(config, name, self.source_interface)

    def run_worker(self, config):
        """Serve the sections until stopped; return the exit status."""
        try:
            sections = [self.find_section(config, name)
                        for name in self.section_names]
        except SectionError as e:
            self.logger.error("%s", e)
            return EXIT_SECTION_ERROR
        if not serve_metrics_of(self.options, self.logger):
            return EXIT_SECTION_ERROR
        first = sections[0].settings
        worker = Worker(self, [section.name for section in sections],
                        poll_interval=first.poll_interval,
                        grace_period=first.grace_period)
        self.stop = worker.stop
        try:
            return worker.run()
        finally:
            for pool in self.pools.values():
                pool.stop()

    def run_section(self, config, name):
        """Run section `name`'s ready jobs under its lock; return its code."""
        opened = self._open_section(config, name, name)
        if isinstance(opened, int):
            return opened
        section, lock = opened
        try:
            code, _ = self._run_as(section, self._execute)
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
        section, lock = opened

        def execute(section, reporter):
            return CelerySweep.runFromSource(
                section.source, self.logger, reporter,
                settings=section.settings, config=config).started

        try:
            code, _ = self._run_as(section, execute)
            return code
        except DispatchError as e:
            transaction.abort()
            self.logger.error("Section %s: %s.", name, e)
            return 1
        finally:
            lock.release()

    def _open_section(self, config, name, lock_name, celery=False):
        """Find section `name` and take the lock `lock_name`: ``(section,
        lock)``, or the exit code after logging why not (2: the section
        cannot run; 1: the lock is held).

        :param celery: the section must send its jobs to Celery.
        """
        try:
            section = self.find_section(config, name)
        except SectionError as e:
            self.logger.error("%s", e)
            return EXIT_SECTION_ERROR
        if celery and not section.settings.celery_dispatch:
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
        return section, lock

    def run_section_pass(self, name, should_stop):
        """One worker pass over section `name` (no lock file: workers run
        side by side). Return ``(exit code, jobs started)``."""
        section = self.find_section(self.config, name)

        def execute(section, reporter):
            return self._execute(section, reporter, should_stop=should_stop,
                                 worker=True)

        return self._run_as(section, execute)

    def _run_as(self, section, execute):
        """Run ``execute(section, reporter)`` connected as the section's
        database role; return ``(exit code, jobs started)``."""
        settings = section.settings
        try:
            set_role(settings.dbuser)
        except DatabaseError as e:
            transaction.abort()
            self._check_reachable()
            self.logger.error(
                "Section %s: cannot run as database role %s (see `jobs db"
                " roles`): %s", section.name, settings.dbuser, e)
            return EXIT_SECTION_ERROR, 0
        try:
            reporter = error_reporter_for(section.name)
            with statement_timeout(settings.statement_timeout):
                return 0, execute(section, reporter)
        except SectionError as e:
            transaction.abort()
            self.logger.error("%s", e)
            return EXIT_SECTION_ERROR, 0
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

    stop = None

    @property
    def pools(self):
        """{section name: its `ChildPool`}, kept by a worker between its
        passes (an idle worker starts no process)."""
        pools = self.__dict__.get("_pools")
        if pools is None:
            pools = self.__dict__["_pools"] = {}
        return pools

    def _execute(self, section, reporter, should_stop=None, worker=False):
        """Run the section's jobs with the back-end its settings ask for;
        log the summary; return the number of jobs started."""
        options, settings = self.options, section.settings
        processes = options.processes or (
            settings.processes if settings.runner_class == "ProcessJobRunner"
            else 0)
        if options.batch_size is not None:
            settings = overridden(settings, batch_size=options.batch_size)
        kwargs = dict(settings=settings, should_stop=should_stop or self.stop,
                      max_jobs=options.max_jobs,
                      max_seconds=options.max_seconds)
        if processes:
            runner = ProcessJobRunner.runFromSource(
                section.source, self.logger, reporter, config=self.config,
                processes=processes, pool=self.pools.get(section.name),
                keep_pool=worker, **kwargs)
            if worker:
                self.pools[section.name] = runner.pool
        else:
            runner = self.runner_class.runFromSource(
                section.source, self.logger, reporter, **kwargs)
        if runner.budget_reached:
            self.logger.info("Budget reached: stopped claiming.")
        if runner.started or not worker:
            runner.log_summary(self.logger)
        return runner.started

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


def _grace(config, names):
    """The longest grace period of the sections `names` (30 s when none
    is a configured section)."""
    return max([config.job_section(name).grace_period for name in names
                if name in config.job_section_names] or [30.0])
