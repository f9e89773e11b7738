"""Bad input: one table of cases, each with the exact message and exit code.

Every case is one test (``test_<case name>``) on the databases it applies
to. RELIABILITY.md ("Bad input") holds the same table; print it with
``python -m tests.scripts.test_bad_input``.

How a case is tried (`Case.via`):

- ``in-process``: ``JobCronScript(test_args=args)`` with a `BufferLogger`;
  the message is the ERROR lines (or the usage error), and no traceback.
- ``subprocess``: ``cronscripts/run_jobs.py args`` as cron runs it; the
  message is the ERROR lines of stderr without their time stamps (or the
  usage error line), and no traceback.
- ``outcome``: ``run_jobs.py do_foo`` in-process over the case's jobs; the
  message is the first job's status and its OOPS (read back from disk),
  or the summary line when no job ran.
- ``create``: creating the job raises; the message is the exception.

Messages may name the test's paths: ``{config}`` (the test's config file),
``{bad}`` (the case's own config file), ``{tmp}`` (a scratch folder),
``{lock_dir}``, ``{error_dir}``, and the test database's ``{host}``,
``{port}`` and ``{database}``.
"""

import io
import os
import re
import sys
from datetime import datetime, timedelta, timezone

import fixtures
from storm.uri import URI
import transaction
from testtools.matchers import Contains, Not
from zope.component import getGlobalSiteManager

from jobs import config as jobs_config
from jobs import schema
from jobs.database import connect, disconnect, get_store
from jobs.bounds import YEAR
from jobs.cli.main import build_parser, main as jobs_command
from jobs.errors import InvalidJobData, InvalidJobOption
from jobs.interfaces.job import IJobSource, JobStatus
from jobs.log import BufferLogger
from jobs.runner import JobCronScript
from jobs.tasks import task
from jobs.testing.foojob import DoFooJob, FooJobDerived
from jobs.testing.script import run_script
from jobs.testing.tasks import not_a_task
from jobs.testing.testcase import DatabaseTestCase

RUN_JOBS = "cronscripts/run_jobs.py"
# The jobs command's commands, as argparse lists them.
COMMANDS = ", ".join(
    "'%s'" % name for name in build_parser()._subparsers._group_actions[
        0].choices)
BOTH = ("postgresql", "sqlite")
SQLITE = ("sqlite",)


class IFooFamilySource(IJobSource):
    """Every job of the foo family, whatever its type (a family source)."""


class Case:
    """One bad input: how to make it, and what it must give.

    :param prepare: ``prepare(test)`` sets the input up and returns the
        run_jobs.py arguments (``outcome``: also the job to look at, as
        ``(args, job)``; ``create``: a callable that must raise).
    :param code: the exit status (None for ``create``).
    """

    def __init__(self, name, what, prepare, code, message, via="in-process",
                 databases=SQLITE, config=None, env=None, after=None):
        self.name = name
        self.what = what
        self.prepare = prepare
        self.code = code
        self.message = message
        self.via = via
        self.databases = databases
        self.config = config
        self.env = env or {}
        self.after = after


# --- how the cases are made --------------------------------------------------


def args(*argv):
    return lambda test: list(argv)


def folder_as_config(test):
    os.mkdir(os.path.join(test.tmp, "folder.conf"))
    return ["do_foo"]


def non_utf8_config(test):
    with open(os.path.join(test.tmp, "latin1.conf"), "wb") as f:
        f.write(b"[do_foo]\n# caf\xe9\n")
    return ["do_foo"]


def file_where_lock_dir_goes(test):
    os.makedirs(os.path.dirname(test.config.lock_dir), exist_ok=True)
    with open(test.config.lock_dir, "w") as f:
        f.write("a file, not a folder")
    return ["do_foo"]


def file_as_parent(test, *argv):
    """Make ``{tmp}/file`` a file: nothing can be created below it (root
    ignores permissions, not this)."""
    with open(os.path.join(test.tmp, "file"), "w") as f:
        f.write("a file, not a folder")
    return list(argv) or ["do_foo"]


def failing_job_under_unwritable_oops_dir(test):
    file_as_parent(test)
    test.factory.makeDoFooJob(raise_="error")
    transaction.commit()
    return ["do_foo"]


def the_job_failed(test):
    transaction.abort()
    test.assertEqual([JobStatus.FAILED.value], [
        row[0] for row in test.store.execute("SELECT status FROM job")])


def empty_database(test):
    path = os.path.join(test.tmp, "empty.db")
    test.use_database("sqlite:" + path)
    return ["do_foo"]


# The numbers of the jobs package's migration files after the first (each
# a file in jobs/schema, named NNNN_name.dialect.sql).
MIGRATIONS_AFTER_1 = sorted({
    int(name[:4]) for name in os.listdir(os.path.dirname(schema.__file__))
    if name[:4].isdigit() and name.endswith(".sql")} - {1})


def old_schema(test):
    path = os.path.join(test.tmp, "old.db")
    connect("sqlite:" + path)
    schema.upgrade(get_store(), target=1)
    disconnect()
    test.use_database("sqlite:" + path)
    return ["do_foo"]


def job(**behaviour):
    def prepare(test):
        made = test.factory.makeDoFooJob(**behaviour)
        transaction.commit()
        return ["do_foo"], made.job
    return prepare


def job_with_raw_json_data(text):
    def prepare(test):
        made = test.factory.makeDoFooJob()
        test.factory.makeDoFooJob()  # a good one after it still runs
        transaction.commit()
        job_row = made.job  # loaded while the context row still loads
        test.store.execute("UPDATE foo_job SET json_data = ? WHERE job = ?",
                           (text, made.job_id))
        transaction.commit()
        return ["do_foo"], job_row
    return prepare


def job_whose_foo_is_deleted(test):
    made = test.factory.makeDoFooJob()
    transaction.commit()
    job_row = made.job
    test.store.execute("DELETE FROM foo WHERE id = ?", (made.context.foo_id,))
    transaction.commit()
    return ["do_foo"], job_row


def job_of_unknown_type(test):
    made = test.factory.makeDoFooJob()
    transaction.commit()
    job_row = made.job  # loaded while the context row still loads
    test.store.execute("UPDATE foo_job SET job_type = 7 WHERE job = ?",
                       (made.job_id,))
    transaction.commit()
    # A family section: its source yields every foo job, whatever its type.
    getGlobalSiteManager().registerUtility(FooJobDerived, IFooFamilySource)
    return ["foo_family"], job_row


def claimed(prepare, *options):
    """`prepare`, run with `options` (e.g. a batch size: the claim path)."""
    def prepare_claimed(test):
        argv, job_row = prepare(test)
        return list(options) + argv, job_row
    return prepare_claimed


def create(**behaviour):
    def prepare(test):
        return lambda: test.factory.makeDoFooJob(**behaviour)
    return prepare


def job_with_retries(**behaviour):
    """`job(**behaviour)` whose row allows 3 retries."""
    def prepare(test):
        made = test.factory.makeDoFooJob(**behaviour)
        test.store.execute("UPDATE job SET max_retries = 3 WHERE id = ?",
                           (made.job_id,))
        transaction.commit()
        return ["do_foo"], made.job
    return prepare


class GreedyJob(DoFooJob):
    """A job class whose retry policy is nonsense."""

    max_retries = -1


class EndlessJob(DoFooJob):
    """A job class whose retry policy is beyond the bound."""

    max_retries = 10 ** 6


class IHastyJobSource(IJobSource):
    """The source of `HastyJob`."""


class HastyJob(DoFooJob):
    """A job class whose lease is a millisecond: two runners would run
    its jobs at once."""

    lease_duration = timedelta(milliseconds=1)


def hasty_section(test):
    manager = getGlobalSiteManager()
    manager.registerUtility(HastyJob, IHastyJobSource)
    test.addCleanup(manager.unregisterUtility, HastyJob, IHastyJobSource)
    return ["hasty"]


def create_of(job_class, **behaviour):
    def prepare(test):
        return lambda: job_class.create(test.factory.makeFoo(), **behaviour)
    return prepare


def decorate(**settings):
    """``@task(**settings)`` on a plain function: it must raise."""
    return lambda test: lambda: task(**settings)(not_a_task)


def cli(*argv):
    """The `jobs` command's arguments."""
    return lambda test: list(argv)


def section(body):
    return "[do_foo]\n%s\n" % body


RANGE_YEAR = "31,536,000 seconds (a year)"


FAMILY_SECTION = """
[foo_family]
source_interface: tests.scripts.test_bad_input.IFooFamilySource
"""

UNREACHABLE = "postgres://127.0.0.1:1/nowhere"

CASES = [
    # -- the command line and the sections -----------------------------------
    Case("no_section", "no section on the command line", args(), 2,
         "run_jobs: error: name at least one SECTION (or --schedules)"),
    Case("bad_option_value", "an option's value of the wrong type",
         args("--batch-size", "many", "do_foo"), 2,
         "run_jobs: error: argument --batch-size: 'many' is not a whole"
         " number."),
    Case("unwritable_log_file", "--log-file in a folder that cannot exist",
         lambda test: file_as_parent(
             test, "--log-file", "INFO:{tmp}/file/run.log", "do_foo"), 2,
         "run_jobs.py: error: argument --log-file: cannot append to"
         " {tmp}/file/run.log: Not a directory", via="subprocess"),
    Case("unknown_section", "a section the configuration lacks",
         args("nope"), 2,
         "Unknown job section 'nope' in {config} (job sections: demo,"
         " do_foo, do_bar)."),
    Case("section_without_source_interface",
         "a section that is not in the schema and sets no source_interface",
         args("do_foo"), 2,
         "{bad}: [lonely] is not a section of the schema, nor a job section"
         " (it sets no source_interface or tasks).",
         config="[lonely]\ndbuser: somebody\n"),
    Case("source_interface_none", "a job section whose source_interface is"
         " none", args("empty"), 2,
         "{bad}: [empty] sets neither source_interface nor tasks: a job"
         " section sets one of them.",
         config="[empty]\nsource_interface: none\n"),
    Case("unimportable_interface", "source_interface cannot be imported",
         args("broken"), 2,
         "Section broken: cannot import source_interface"
         " no.such.module.IFooSource: No module named 'no'",
         config="[broken]\nsource_interface: no.such.module.IFooSource\n"),
    Case("not_an_interface", "source_interface names a class, not an"
         " interface", args("klass"), 2,
         "Section klass: source_interface jobs.testing.foojob.DoFooJob is"
         " not an interface.",
         config="[klass]\nsource_interface: jobs.testing.foojob.DoFooJob\n"),
    Case("no_utility", "no utility provides the interface",
         args("nobody"), 2,
         "Section nobody: no utility is registered for"
         " tests.scripts.test_bad_input.IFooFamilySource (see [components]"
         " register).",
         config="[nobody]\nsource_interface:"
         " tests.scripts.test_bad_input.IFooFamilySource\n"),
    Case("unimportable_registration", "[components] register names"
         " nothing importable", args("do_foo"), 2,
         "{bad}: [components] register: cannot import no.such.register:"
         " No module named 'no'",
         config="[components]\nregister: no.such.register\n"),
    # -- numbers of the run's command line (`jobs.runoptions`) --------------
    Case("max_jobs_negative", "--max-jobs below 1",
         args("--max-jobs", "-1", "do_foo"), 2,
         "run_jobs: error: argument --max-jobs: -1 is below 1."),
    Case("max_jobs_zero", "--max-jobs 0", args("--max-jobs", "0", "do_foo"),
         2, "run_jobs: error: argument --max-jobs: 0 is below 1."),
    Case("batch_size_zero", "--batch-size 0",
         args("--batch-size", "0", "do_foo"), 2,
         "run_jobs: error: argument --batch-size: 0 is below 1."),
    Case("processes_negative", "--processes below 1",
         args("--processes", "-2", "do_foo"), 2,
         "run_jobs: error: argument --processes: -2 is below 1."),
    Case("max_seconds_negative", "--max-seconds below 0",
         args("--max-seconds", "-5", "do_foo"), 2,
         "run_jobs: error: argument --max-seconds: '-5' is not more than 0"
         " seconds."),
    Case("max_seconds_nan", "--max-seconds that is not a number",
         args("--max-seconds", "nan", "do_foo"), 2,
         "run_jobs: error: argument --max-seconds: 'nan' is not more than 0"
         " seconds."),
    Case("unknown_option", "an option run_jobs.py does not have",
         args("--bogus", "do_foo"), 2,
         "run_jobs: error: unrecognized arguments: --bogus"),
    # -- seconds in the configuration (`jobs.bounds`) -------------------------
    Case("lease_seconds_tiny", "a lease below 1 s (two runners would run the"
         " job)", args("do_foo"), 2,
         "{bad}: [do_foo] lease_seconds: 0.001 is outside its range: 1 to "
         + RANGE_YEAR + ".", config=section("lease_seconds: 0.001")),
    Case("lease_seconds_huge", "a lease beyond a year", args("do_foo"), 2,
         "{bad}: [do_foo] lease_seconds: 1000000000000.0 is outside its"
         " range: 1 to " + RANGE_YEAR + ".",
         config=section("lease_seconds: 1e12")),
    Case("lease_seconds_negative", "a negative lease", args("do_foo"), 2,
         "{bad}: [do_foo] lease_seconds: -60 is outside its range: 1 to "
         + RANGE_YEAR + ".", config=section("lease_seconds: -60")),
    Case("max_runtime_zero", "a max_runtime of 0", args("do_foo"), 2,
         "{bad}: [do_foo] max_runtime: 0 is outside its range: 1 to "
         + RANGE_YEAR + ".", config=section("max_runtime: 0")),
    Case("statement_timeout_negative", "a negative statement_timeout",
         args("do_foo"), 2,
         "{bad}: [do_foo] statement_timeout: -1 is outside its range:"
         " 0.001 to " + RANGE_YEAR + ".",
         config=section("statement_timeout: -1")),
    Case("poll_interval_huge", "a poll_interval beyond a day",
         args("do_foo"), 2,
         "{bad}: [do_foo] poll_interval: 1000000.0 is outside its range:"
         " 0.01 to 86,400 seconds.", config=section("poll_interval: 1e6")),
    Case("grace_period_negative", "a negative grace_period", args("do_foo"),
         2, "{bad}: [do_foo] grace_period: -1 is outside its range: 0 to"
         " 86,400 seconds.", config=section("grace_period: -1")),
    Case("rate_period_zero", "a rate_period of 0", args("do_foo"), 2,
         "{bad}: [do_foo] rate_period: 0 is outside its range: 0.001 to "
         + RANGE_YEAR + ".", config=section("rate_period: 0")),
    Case("lease_duration_tiny", "a job class whose lease_duration is a"
         " millisecond (the section sets no lease_seconds)", hasty_section,
         2, "Section hasty: HastyJob lease_duration: 0.001 seconds is outside"
         " its range: 1 to " + RANGE_YEAR + ".",
         config="[hasty]\nsource_interface:"
         " tests.scripts.test_bad_input.IHastyJobSource\n"),
    Case("lease_seconds_nan", "a lease that is not a number (nan)",
         args("do_foo"), 2,
         "{bad}: [do_foo] lease_seconds: nan is outside its range: 1 to "
         + RANGE_YEAR + ".", config=section("lease_seconds: nan")),
    Case("lease_seconds_infinite", "an infinite lease", args("do_foo"), 2,
         "{bad}: [do_foo] lease_seconds: inf is outside its range: 1 to "
         + RANGE_YEAR + ".", config=section("lease_seconds: inf")),
    # -- the configuration file ----------------------------------------------
    Case("config_missing", "JOBS_CONFIG names a file that does not exist",
         args("do_foo"), 2, "Config file not found: {tmp}/missing.conf",
         via="subprocess", env={"JOBS_CONFIG": "{tmp}/missing.conf"}),
    Case("config_unreadable", "JOBS_CONFIG names a folder", folder_as_config,
         2, "Cannot read config file {tmp}/folder.conf: [Errno 21] Is a"
         " directory: '{tmp}/folder.conf'",
         env={"JOBS_CONFIG": "{tmp}/folder.conf"}),
    Case("config_not_utf8", "the config file is not UTF-8", non_utf8_config,
         2, "Cannot read config file {tmp}/latin1.conf: 'utf-8' codec can't"
         " decode byte 0xe9 in position 14: invalid continuation byte",
         env={"JOBS_CONFIG": "{tmp}/latin1.conf"}),
    Case("config_malformed", "a line outside any section",
         args("do_foo"), 2,
         "Malformed config file {bad}: Source contains parsing errors:"
         " '{bad}' [line 4]: 'this is not ini\\n'",
         config="this is not ini\n"),
    Case("config_unknown_key", "a key the schema does not know",
         args("do_foo"), 2,
         "{bad} is not valid: do_foo does not have a batchsize key.",
         config="[do_foo]\nbatchsize: 5\n"),
    Case("wrong_type_number", "a number that is not one", args("do_foo"), 2,
         "{bad}: [do_foo] batch_size: 'lots' is not a number.",
         config="[do_foo]\nbatch_size: lots\n"),
    Case("wrong_type_range", "a number out of range", args("do_foo"), 2,
         "{bad}: [do_foo] poll_interval: 0 is outside its range: 0.01 to"
         " 86,400 seconds.",
         config="[do_foo]\npoll_interval: 0\n"),
    Case("wrong_type_level", "a log level that is not one", args("do_foo"), 2,
         "{bad}: [do_foo] log_level: 'LOUD' is not a log level.",
         config="[do_foo]\nlog_level: LOUD\n"),
    Case("wrong_type_runner", "an unknown runner_class", args("do_foo"), 2,
         "{bad}: [do_foo] runner_class: 'Celery' is not JobRunner or"
         " ProcessJobRunner.",
         config="[do_foo]\nrunner_class: Celery\n"),
    # -- the database ----------------------------------------------------------
    Case("database_unreachable", "nothing listens at the database's address",
         args("do_foo"), 2,
         "Cannot connect to the database %s: connection to server at"
         ' "127.0.0.1", port 1 failed: Connection refused Is the server'
         " running on that host and accepting TCP/IP connections?"
         % UNREACHABLE, via="subprocess",
         env={"JOBS_DATABASE_URI": UNREACHABLE}),
    Case("database_uri_unsupported", "a database URI of another kind",
         args("do_foo"), 2,
         "Unsupported database URI 'mysql://db/jobs': use postgres://... or"
         " sqlite:/path/to/file.db",
         env={"JOBS_DATABASE_URI": "mysql://db/jobs"}),
    Case("schema_missing", "a database without the schema", empty_database, 2,
         "The database has no jobs schema: run the schema upgrade"
         " (jobs.schema.upgrade) first."),
    Case("schema_old", "a database whose schema is older than the code",
         old_schema, 2,
         "The database's jobs schema is older than the code: migrations"
         " %s are not applied (run `jobs db upgrade`)."
         % ", ".join(map(str, MIGRATIONS_AFTER_1))),
    Case("role_missing", "dbuser names a role that does not exist",
         args("ghost"), 2,
         "Section ghost: cannot run as database role no_such_role_anywhere"
         " (see `jobs db roles`): Cannot connect to the database"
         " postgres://no_such_role_anywhere@{host}:{port}/{database}:"
         ' connection to server at "{host}", port {port} failed: FATAL: role'
         ' "no_such_role_anywhere" does not exist',
         databases=("postgresql",),
         config="[ghost]\ndbuser: no_such_role_anywhere\n"
         "source_interface: jobs.testing.foojob.IDoFooJobSource\n"),
    # -- files the run writes --------------------------------------------------
    Case("lock_dir_unwritable", "the lock folder cannot be created",
         file_where_lock_dir_goes, 2,
         "Section do_foo: cannot create its lock file in {lock_dir}: File"
         " exists"),
    Case("oops_dir_unwritable", "the OOPS folder cannot be created (the job"
         " still ends FAILED; the report goes to the log at ERROR)",
         failing_job_under_unwritable_oops_dir, 0,
         "Could not write OOPS report to {tmp}/file/oops (Not a directory):"
         " ValueError: Something broke (7).", via="subprocess",
         databases=BOTH, after=the_job_failed,
         config="[error_reports]\nerror_dir: {tmp}/file/oops\n"),
    # -- jobs and their data ---------------------------------------------------
    Case("json_data_not_json", "json_data that is not valid JSON (SQLite;"
         " PostgreSQL's jsonb cannot hold it)", job_with_raw_json_data("{oops"),
         0, "Failed; OOPS JobLoadError: Cannot load job 1 for DoFooJob:"
         " JSONDecodeError: Expecting property name enclosed in double"
         " quotes: line 1 column 2 (char 1)", via="outcome"),
    Case("json_data_not_json_claimed", "the same, claimed in a batch"
         " (--batch-size 5)", claimed(job_with_raw_json_data("{oops"),
                                     "--batch-size", "5"),
         0, "Failed; OOPS JobLoadError: Cannot load job 1 for DoFooJob:"
         " JSONDecodeError: Expecting property name enclosed in double"
         " quotes: line 1 column 2 (char 1)", via="outcome"),
    Case("json_data_wrong_shape", "json_data that is JSON but not an object",
         job_with_raw_json_data("[1, 2]"), 0,
         "Failed; OOPS TypeError: DoFooJob 1: json_data is a list, not a"
         " JSON object.", via="outcome", databases=BOTH),
    Case("context_deleted", "the context row is deleted (its foo was) before"
         " the job runs", job_whose_foo_is_deleted, 0,
         "Waiting; INFO No jobs to run.", via="outcome", databases=BOTH),
    Case("unknown_job_type", "a job type value no class is registered for",
         job_of_unknown_type, 0,
         "Failed; OOPS JobLoadError: Cannot load job 1 for FooJobDerived:"
         " ValueError: 7 is not a value of FooJobType.", via="outcome",
         databases=BOTH, config=FAMILY_SECTION),
    Case("unknown_job_type_claimed", "the same, claimed in a batch"
         " (--batch-size 5)", claimed(job_of_unknown_type, "--batch-size", "5"),
         0, "Failed; OOPS JobLoadError: Cannot load job 1 for FooJobDerived:"
         " ValueError: 7 is not a value of FooJobType.", via="outcome",
         databases=BOTH, config=FAMILY_SECTION),
    Case("run_returns_garbage", "run() returns a value", job(return_=[
        "not", {"a": "status"}]), 0, "Completed; no OOPS", via="outcome",
         databases=BOTH),
    Case("unprintable_exception", "run() raises an exception whose str()"
         " raises", job(raise_="unprintable"), 0,
         "Failed; OOPS UnprintableError: <unprintable UnprintableError object>",
         via="outcome", databases=BOTH),
    Case("non_utf8_log", "the job logs bytes that are not UTF-8, and a NUL",
         job(say_bytes=b"caf\xe9 \x00 \xc3\xa9".hex()), 0,
         "Completed; no OOPS; log: caf\\xe9 \\x00 \u00e9",
         via="outcome-subprocess",
         databases=BOTH),
    Case("json_data_too_large", "json_data over the size limit (1 MiB)",
         create(blob="x" * (1024 * 1024)), None,
         "JobDataTooLarge: json_data is 1,048,588 bytes of JSON; the limit"
         " is 1,048,576. Keep bulk data in a table of your own and put its"
         " key in json_data.", via="create", databases=BOTH),
    Case("json_data_unserializable", "json_data that cannot be JSON",
         create(tags={"a", "b"}), None,
         "InvalidJobData: json_data is not JSON: Object of type set is not"
         " JSON serializable.", via="create", databases=BOTH),
    Case("json_data_nul", "json_data holding a NUL character",
         create(note="a\x00b"), None,
         "InvalidJobData: json_data holds a NUL character (\\u0000), which"
         " PostgreSQL's jsonb cannot store.", via="create", databases=BOTH),
    # -- a job's creation options and retry policy (`jobs.bounds`) -----------
    Case("delay_negative", "a negative delay", create(delay=-1), None,
         "InvalidJobOption: delay: -1 is negative: a job cannot start in the"
         " past.", via="create", databases=BOTH),
    Case("delay_past_9999", "a delay that reaches past the year 9999",
         create(delay=timedelta(days=9500 * 365)), None,
         "InvalidJobOption: delay: datetime.timedelta(days=3467500) puts the"
         " job's start past the year 9999.", via="create", databases=BOTH),
    Case("delay_not_a_number", "a delay that is text", create(delay="soon"),
         None, "InvalidJobOption: delay: 'soon' is not a number of seconds or"
         " a timedelta.", via="create", databases=BOTH),
    Case("scheduled_start_naive", "a scheduled_start without a time zone",
         create(scheduled_start=datetime(2030, 1, 1)), None,
         "InvalidJobOption: scheduled_start: 2030-01-01T00:00:00 has no time"
         " zone: give an aware datetime (tzinfo=timezone.utc).",
         via="create", databases=BOTH),
    Case("scheduled_start_past_9999", "a scheduled_start past the year 9999"
         " in UTC", create(scheduled_start=datetime(
             9999, 12, 31, 23, tzinfo=timezone(timedelta(hours=-5)))), None,
         "InvalidJobOption: scheduled_start: 9999-12-31T23:00:00-05:00 is"
         " past the year 9999 in UTC.", via="create", databases=BOTH),
    Case("priority_too_large", "a priority beyond PostgreSQL's integer",
         create(priority=2 ** 40), None,
         "InvalidJobOption: priority: 1099511627776 is outside"
         " -2147483648..2147483647.", via="create", databases=BOTH),
    Case("unique_key_empty", "an empty unique_key", create(unique_key=""),
         None, "InvalidJobOption: unique_key: the empty string: give a key,"
         " or None for none.", via="create", databases=BOTH),
    Case("on_dependency_failure_unknown", "an on_dependency_failure that is"
         " not one", create(on_dependency_failure="ignore"), None,
         "InvalidJobOption: on_dependency_failure: 'ignore' is not 'cancel'"
         " or 'run'.", via="create", databases=BOTH),
    Case("max_retries_negative", "a job class whose max_retries is -1",
         create_of(GreedyJob), None,
         "InvalidJobOption: max_retries: -1 is outside its range: 0 to"
         " 1,000.", via="create", databases=BOTH),
    Case("max_retries_huge", "a job class whose max_retries is a million",
         create_of(EndlessJob), None,
         "InvalidJobOption: max_retries: 1000000 is outside its range: 0 to"
         " 1,000.", via="create", databases=BOTH),
    Case("retry_delay_negative", "a retry_delay below 0 when the job asks"
         " to be retried (it would retry at once, in a loop)",
         job_with_retries(raise_="retry", retry_delay=-5), 0,
         "Failed; OOPS InvalidJobOption: retry_delay: -5 seconds is"
         " outside its range: more than 0 and at most " + RANGE_YEAR
         + ". (the job raised RetryError: Try again later.)",
         via="outcome", databases=BOTH),
    Case("retry_delay_9500_years", "a retry_delay of 9,500 years (it stored"
         " the year 11533)",
         job_with_retries(raise_="retry", retry_delay=9500 * YEAR), 0,
         "Failed; OOPS InvalidJobOption: retry_delay: 299,592,000,000"
         " seconds is outside its range: more than 0 and at most "
         + RANGE_YEAR + ". (the job raised RetryError: Try again later.)",
         via="outcome", databases=BOTH),
    Case("task_retry_delay_negative", "@task(retry_delay=-1)",
         decorate(retry_delay=-1), None,
         "ValueError: @task jobs.testing.tasks.not_a_task: retry_delay: -1 is"
         " outside its range: more than 0 and at most " + RANGE_YEAR + ".",
         via="decorate", databases=SQLITE),
    Case("task_retry_delay_zero", "@task(retry_delay=0)",
         decorate(retry_delay=0), None,
         "ValueError: @task jobs.testing.tasks.not_a_task: retry_delay: 0 is"
         " outside its range: more than 0 and at most " + RANGE_YEAR + ".",
         via="decorate", databases=SQLITE),
    Case("task_lease_seconds_tiny", "@task(lease_seconds=0.001)",
         decorate(lease_seconds=0.001), None,
         "ValueError: @task jobs.testing.tasks.not_a_task: lease_seconds:"
         " 0.001 is outside its range: 1 to " + RANGE_YEAR + ".",
         via="decorate", databases=SQLITE),
    Case("task_max_retries_negative", "@task(max_retries=-1)",
         decorate(max_retries=-1), None,
         "ValueError: @task jobs.testing.tasks.not_a_task: max_retries: -1 is"
         " outside its range: 0 to 1,000.", via="decorate",
         databases=SQLITE),
    Case("task_max_retries_not_whole", "@task(max_retries=1.5)",
         decorate(max_retries=1.5), None,
         "TypeError: @task jobs.testing.tasks.not_a_task: max_retries: 1.5 is"
         " not a whole number.", via="decorate", databases=SQLITE),
    # -- the jobs command's arguments -----------------------------------------
    Case("cli_oops_show_dotdot", "jobs oops show ..",
         cli("oops", "show", ".."), 2,
         "jobs: No OOPS report .. in the index or in {error_dir}.",
         via="cli", databases=BOTH),
    Case("cli_since_too_old", "jobs list --since 999999999d",
         cli("list", "--since", "999999999d"), 2,
         "jobs: Bad date '999999999d': that age reaches back before the year"
         " 1.", via="cli", databases=BOTH),
    Case("cli_date_before_year_1_in_utc", "jobs list --since a date before"
         " the year 1 once in UTC",
         cli("list", "--since", "0001-01-01T00:00+05:00"), 2,
         "jobs: Bad date '0001-01-01T00:00+05:00': it is outside the years 1"
         " to 9999 in UTC.", via="cli", databases=BOTH),
    Case("cli_date_past_9999_in_utc", "jobs prune --older-than a date past"
         " 9999 once in UTC",
         cli("prune", "--older-than", "9999-12-31T23:00-05:00"), 2,
         "jobs: Bad date '9999-12-31T23:00-05:00': it is outside the years 1"
         " to 9999 in UTC.", via="cli", databases=BOTH),
    Case("cli_bad_date", "jobs list --since 2026-13-45",
         cli("list", "--since", "2026-13-45"), 2,
         "jobs: Bad date '2026-13-45': use YYYY-MM-DD[THH:MM[:SS]] or an age"
         " like 30d, 12h.", via="cli"),
    Case("cli_prune_batch_size_zero", "jobs prune --batch-size 0",
         cli("prune", "--older-than", "30d", "--batch-size", "0"), 2,
         "jobs: --batch-size must be at least 1.", via="cli"),
    Case("cli_id_too_large", "jobs show with an id beyond the id column",
         cli("show", "99999999999999999999"), 2,
         "jobs: Bad job id '99999999999999999999': the largest id is"
         " 2,147,483,647.", via="cli", databases=BOTH),
    Case("cli_id_not_a_number", "jobs cancel with an id that is not one",
         cli("cancel", "-5"), 2,
         "jobs: Bad job id '-5': ids are whole numbers.", via="cli"),
    Case("cli_limit_zero", "jobs list --limit 0", cli("list", "--limit", "0"),
         2, "jobs: --limit must be at least 1.", via="cli"),
    Case("cli_oops_limit_zero", "jobs oops list --limit 0",
         cli("oops", "list", "--limit", "0"), 2,
         "jobs: argument --limit: 0 is below 1.", via="cli"),
    Case("cli_unknown_status", "jobs list --status nope",
         cli("list", "--status", "nope"), 2,
         "jobs: Unknown status 'nope' (one of: waiting, running, completed,"
         " failed, suspended, cancelled, blocked).", via="cli"),
    Case("cli_unknown_command", "a command jobs does not have",
         cli("frobnicate"), 2,
         "jobs: argument command: invalid choice: 'frobnicate' (choose from"
         " {commands})", via="cli"),
    Case("cli_run_max_jobs_negative", "jobs run --max-jobs -1",
         cli("run", "--max-jobs", "-1", "do_foo"), 2,
         "jobs run: error: argument --max-jobs: -1 is below 1.", via="cli"),
    Case("cli_run_batch_size_zero", "jobs run --batch-size 0",
         cli("run", "--batch-size", "0", "do_foo"), 2,
         "jobs run: error: argument --batch-size: 0 is below 1.", via="cli"),
]


class BadInputTestCase(DatabaseTestCase):
    """Runs the cases of `CASES` (the subclasses below add one test each)."""

    __test__ = False

    def setUp(self):
        super().setUp()
        self.tmp = self.useFixture(fixtures.TempDir()).path

    def values(self, bad=None):
        address = URI(self.db.uri.replace("sqlite:", "sqlite:///", 1))
        return dict(config=self.config.path, bad=bad, tmp=self.tmp,
                    commands=COMMANDS,
                    lock_dir=self.config.lock_dir,
                    error_dir=self.config.error_dir, host=address.host,
                    port=address.port, database=address.database)

    def use_database(self, uri):
        """Run the case against `uri` instead of the fixture's database."""
        disconnect()
        self.addCleanup(connect, self.db.uri)
        self.addCleanup(disconnect)
        self.useFixture(fixtures.EnvironmentVariable("JOBS_DATABASE_URI", uri))

    def use_config(self, case):
        """Layer the case's config text over the test's configuration."""
        bad = None
        if case.config is not None:
            bad = os.path.join(self.tmp, "case.conf")
            with open(bad, "w") as f:
                # lazr.config resolves extends against this file's folder.
                f.write("[meta]\nextends: %s\n\n%s" % (
                    os.path.relpath(self.config.path, self.tmp),
                    case.config.format(tmp=self.tmp)))
            self.useFixture(fixtures.EnvironmentVariable("JOBS_CONFIG", bad))
        for name, value in case.env.items():
            self.useFixture(fixtures.EnvironmentVariable(
                name, value.format(tmp=self.tmp)))
        if bad is not None or "JOBS_CONFIG" in case.env:
            # The next get_config() reads JOBS_CONFIG; the case's config
            # must load there, inside the script, to be reported.
            jobs_config.set_config(None)
            self.addCleanup(jobs_config.set_config, None)
        return bad

    def check_case(self, case):
        prepared = case.prepare(self)
        if isinstance(prepared, list):
            prepared = [arg.format(tmp=self.tmp) for arg in prepared]
        bad = self.use_config(case)
        expected = case.message.format(**self.values(bad))
        observe = getattr(self, "observe_" + case.via.replace("-", "_"))
        self.assertEqual((case.code, expected), observe(prepared))
        if case.after is not None:
            case.after(self)

    def observe_in_process(self, argv):
        stderr = self.useFixture(
            fixtures.MonkeyPatch("sys.stderr", io.StringIO())).new_value
        script = JobCronScript(test_args=argv, commandline_config=True,
                               name="run_jobs")
        script.logger = BufferLogger()
        code = script.lock_and_run()
        log = script.logger.getLogBuffer()
        self.assertThat(log + stderr.getvalue(), Not(Contains("Traceback")))
        return code, self.message(log, stderr.getvalue())

    def observe_subprocess(self, argv):
        code, out, err = run_script(RUN_JOBS, argv)
        self.assertThat(err, Not(Contains("Traceback")))
        err = re.sub(r"(?m)^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d ", "", err)
        return code, self.message(err, err)

    def message(self, log, stderr):
        errors = [line[len("ERROR   "):] for line in log.splitlines()
                  if line.startswith("ERROR   ")]
        usage = [line for line in stderr.splitlines() if ": error: " in line]
        return "\n".join(errors or usage)

    def observe_outcome(self, prepared, subprocess=False):
        argv, job_row = prepared
        job_id = job_row.id
        # Hold nothing (on SQLite, not the write lock) while it runs.
        transaction.abort()
        if subprocess:
            code, _, output = run_script(RUN_JOBS, argv)
            output = re.sub(r"(?m)^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d ", "",
                            output)
        else:
            script = JobCronScript(test_args=argv, commandline_config=True)
            script.logger = BufferLogger()
            code = script.lock_and_run()
            output = script.logger.getLogBuffer()
        self.assertThat(output, Not(Contains("Traceback")))
        transaction.abort()
        self.store.invalidate()
        status, log = self.store.execute(
            "SELECT status, log FROM job WHERE id = ?", (job_id,)).get_one()
        parts = [JobStatus.items[status].title]
        oopses = [report for report in self.oopses()
                  if report.get("job_id") == job_id]
        if oopses:
            parts.append("OOPS %s: %s" % (oopses[0]["type"],
                                          oopses[0]["value"]))
        elif "Ran " in output or status != 0:
            parts.append("no OOPS")
        else:
            parts.append(output.splitlines()[-1].replace("INFO    ", "INFO "))
        if log and "log" in self.case_name:
            line = log.split(" INFO    ", 1)[1]
            # What cron mails (stderr) shows the same text as job.log.
            self.assertThat(output, Contains("INFO    " + line))
            parts.append("log: %s" % line)
        return code, "; ".join(parts)

    def observe_outcome_subprocess(self, prepared):
        # A subprocess: what a job logs must not reach this process's
        # log capture (pytest-xdist cannot ship undecodable text).
        return self.observe_outcome(prepared, subprocess=True)

    def observe_create(self, make):
        error = self.assertRaises((InvalidJobData, InvalidJobOption), make)
        transaction.abort()
        return None, "%s: %s" % (type(error).__name__, error)

    def observe_decorate(self, make):
        error = self.assertRaises((TypeError, ValueError), make)
        return None, "%s: %s" % (type(error).__name__, error)

    def observe_cli(self, argv):
        out, err = io.StringIO(), io.StringIO()
        self.useFixture(fixtures.MonkeyPatch("sys.stdout", out))
        self.useFixture(fixtures.MonkeyPatch("sys.stderr", err))
        code = jobs_command(argv)
        transaction.abort()
        self.assertThat(err.getvalue(), Not(Contains("Traceback")))
        lines = err.getvalue().splitlines()
        # Every argument error is one line.
        self.assertEqual(1, len(lines), err.getvalue())
        return code, lines[0]


def _make_test(case):
    def test(self):
        self.case_name = case.name
        self.check_case(case)
    test.__name__ = "test_" + case.name
    test.__doc__ = case.what
    return test


for _kind in BOTH:
    _name = "TestBadInput_%s" % _kind
    globals()[_name] = type(_name, (BadInputTestCase,), dict(
        {"test_" + case.name: _make_test(case)
         for case in CASES if _kind in case.databases},
        database_kind=_kind, __test__=True, __module__=__name__,
        __qualname__=_name))


def markdown_table():
    """The cases as RELIABILITY.md shows them."""
    lines = ["| # | bad input | how it is tried | exit | message / outcome |",
             "|---|---|---|---|---|"]
    for number, case in enumerate(CASES, 1):
        message = case.message.replace("|", "\\|").replace("\n", " ")
        lines.append("| %d | %s (`%s`) | %s, %s | %s | `%s` |" % (
            number, case.what, case.name, case.via,
            "/".join(case.databases),
            "–" if case.code is None else case.code, message))
    return "\n".join(lines)


if __name__ == "__main__":
    sys.stdout.write(markdown_table() + "\n")
