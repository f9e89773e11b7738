"""The reference job type: `DoFooJob`, over a `FooJob` context table.

It is what the tests run and what README's "Defining a job type" shows.
A `Foo` is an application row; a `FooJob` row ties one job to one foo.
`DoFooJob.run()` does what the job's ``json_data`` asks, so that tests
can make it succeed, write, fail, retry or suspend without new classes.
"""

__all__ = [
    "DoBarJob",
    "DoFooJob",
    "Foo",
    "FooJob",
    "FooJobDerived",
    "FooJobType",
    "IDoBarJobSource",
    "IDoFooJob",
    "IDoFooJobSource",
    "MIGRATIONS",
    "RetryError",
    "UserError",
    "raise_as_asked",
]

import logging
import os
import time
from datetime import timedelta

from lazr.enum import DBEnumeratedType, DBItem
from storm.locals import Int, Reference, Unicode
from zope.interface import implementer, provider

from jobs.database import JSON, DBEnum, get_store
from jobs.errors import SuspendJobException
from jobs.interfaces.job import IJobSource, IRunnableJob, JobStatus
from jobs.model.derived import DerivedJob
from jobs.model.job import Job
from jobs.model.options import OPTION_NAMES
from jobs.schema import Migrations
from jobs.testing.hostile import misbehave
from jobs.testing.leaks import leak
from jobs.testing.reach import reach_for_login
from jobs.testing.windows import running_window

MIGRATIONS = Migrations("jobs.testing", "jobs.testing")
logger = logging.getLogger(__name__)


class FooJobType(DBEnumeratedType):
    """The job types of the foo family."""

    DO_FOO = DBItem(0, "Do foo\n\nDoes foo to a Foo.")
    DO_BAR = DBItem(1, "Do bar\n\nDoes bar to a Foo.")

    # No class is registered for it: a row of this type cannot be loaded
    # (tests of unloadable jobs).
    DO_NOTHING = DBItem(2, "Do nothing\n\nNo class is registered for it.")


class Foo:
    """An application row that jobs are about."""

    __storm_table__ = "foo"

    id = Int(primary=True)
    name = Unicode(allow_none=False)
    note = Unicode()

    def __init__(self, name, note=None):
        self.name = name
        self.note = note


class FooJob:
    """The context row: which job does what to which foo."""

    __storm_table__ = "foo_job"

    id = Int(primary=True)
    job_id = Int(name="job", allow_none=False)
    job = Reference(job_id, Job.id)
    foo_id = Int(name="foo", allow_none=False)
    foo = Reference(foo_id, Foo.id)
    job_type = DBEnum(enum=FooJobType, allow_none=False)
    json_data = JSON()

    def __init__(self, job, foo, job_type, json_data=None):
        self.job = job
        self.foo = foo
        self.job_type = job_type
        self.json_data = json_data or {}


class RetryError(Exception):
    """A transient failure: try again later."""


class UserError(Exception):
    """The user's mistake: tell them, file no OOPS."""


class UnprintableError(Exception):
    """An error whose ``str()`` raises (as some libraries' do)."""

    def __str__(self):
        raise RuntimeError("this error cannot be printed")


class IDoFooJob(IRunnableJob):
    """A job that does foo to a Foo."""


class IDoFooJobSource(IJobSource):
    """The source of `IDoFooJob` jobs."""

    def create(foo, **behaviour):
        """Create a job about `foo`; leaves the transaction to the caller."""

    def acquire(foo):
        """Return the pending job about `foo`, creating it if there is none.

        One pending job per foo, even when two connections race.
        """


class IDoBarJobSource(IJobSource):
    """The source of DO_BAR jobs (a second section in the tests)."""


class FooJobDerived(DerivedJob):
    """The base of the foo family's job classes."""

    context_class = FooJob
    retry_error_types = (RetryError,)
    user_error_types = (UserError,)
    # run() writes the foo's note and records executions.
    database_privileges = {"foo": ("SELECT", "UPDATE"),
                           "job_execution": ("INSERT",)}
    # And the reliability tests' running windows (jobs.testing.windows).
    database_privileges["job_window"] = ("INSERT", "UPDATE", "SELECT")

    def __repr__(self):
        return "<%s for foo %s; status=%s>" % (
            type(self).__name__, self.context.foo_id,
            self.job.status.title)

    @classmethod
    def create(cls, foo, **behaviour):
        """Create a job of this type about `foo`.

        `behaviour` goes into ``json_data`` and steers ``run()``: ``note``
        (text written to the foo), ``sql`` (a statement to execute),
        ``progress`` (a list of ``[current, total, status, group...]``
        reports, made first), ``sleep`` (seconds), ``gate`` (a path the
        job waits for), ``allocate`` (bytes), ``exit`` (an exit status
        for ``os._exit``), ``say`` (a message logged at INFO),
        ``say_bytes`` (hex of bytes, not necessarily UTF-8, logged at
        INFO), ``warn`` (a message logged at WARNING), ``record`` (insert
        a row into ``job_execution``), ``secret`` (a password the job
        holds in a local, logs, reports in its progress and its
        ``getOopsVars``, and puts in its error's message: everything the
        redaction must hide), ``raise_`` (one of "retry", "user",
        "suspend", "error", "unprintable": an exception whose ``str()``
        raises), ``return_`` (a value ``run()`` returns; ``return_set``:
        a set, which is not JSON), ``retry_until``
        (raise `RetryError` while the attempt is below it),
        ``retry_delay`` (seconds, instead of the class's `retry_delay`),
        ``until_cancelled`` (seconds to run, calling ``check_cancelled()``
        every 20 ms), ``window`` (a key: record the job's running window
        for ``window_seconds``, `jobs.testing.windows`), and what
        `jobs.testing.hostile.misbehave` does; ``reach_for_login``
        (`jobs.testing.reach`); ``leak`` (a secret spilled in every look
        the redaction must know, `jobs.testing.leaks`).
        The creation options (`jobs.model.options.OPTION_NAMES`: delay,
        priority, unique_key, depends_on...) are the job's, not behaviour.
        """
        # Creation options (delay, priority, depends_on...) are the job's.
        options = {name: behaviour.pop(name) for name in OPTION_NAMES
                   if name in behaviour}
        return cls._create(foo=foo, json_data=behaviour, **options)

    @classmethod
    def acquire(cls, foo):
        """See `IDoFooJobSource`."""
        store = get_store()
        # A no-op write takes foo's row lock (PostgreSQL) or the write
        # lock (SQLite) first, so racing callers queue here and the
        # second one sees the first one's job.
        store.execute("UPDATE foo SET id = id WHERE id = ?", (foo.id,))
        existing = store.find(
            FooJob, FooJob.foo_id == foo.id,
            FooJob.job_type == cls.class_job_type,
            FooJob.job_id == Job.id,
            Job.status.is_in([JobStatus.WAITING, JobStatus.RUNNING,
                              JobStatus.SUSPENDED])).order_by(FooJob.id).first()
        if existing is not None:
            return cls(existing)
        return cls.create(foo)

    @property
    def retry_delay(self):
        """See `IRunnableJob`; ``retry_delay`` in json_data overrides it."""
        seconds = self.context.json_data.get("retry_delay")
        if seconds is None:
            return DerivedJob.retry_delay
        return timedelta(seconds=seconds)

    def getOopsVars(self):
        """See `IRunnableJob`."""
        oops_vars = super().getOopsVars() + [
            ("foo_id", self.context.foo_id),
            ("foo_job_id", self.context.id),
            ("foo_job_type", self.context.job_type.title),
        ]
        data = self.context.json_data
        if isinstance(data, dict) and data.get("secret"):
            oops_vars += [("smtp_password", data["secret"]),
                          ("smtp_login", "mailer password=%s" % data["secret"])]
        if isinstance(data, dict) and data.get("leak"):
            oops_vars.append(("auth", data["leak"]))
        return oops_vars

    def getOperationDescription(self):
        """See `IRunnableJob`."""
        return "doing %s to foo %s" % (
            self.context.job_type.title.lower(), self.context.foo_id)

    def run(self):
        """See `IRunnableJob`."""
        data = self.context.json_data
        if not isinstance(data, dict):
            # Say what is wrong, not "'list' object has no attribute".
            raise TypeError("%s %d: json_data is a %s, not a JSON object." % (
                type(self).__name__, self.job_id, type(data).__name__))
        if not data:
            # Asked for nothing: the no-op job of the benchmarks, which
            # then time the framework, not thirty look-ups of this test
            # double (the peers' no-op jobs are empty functions).
            return None
        for step in data.get("progress", ()):
            self.reportProgress(*step[:3], group=tuple(step[3:]))
        if data.get("note") is not None:
            self.context.foo.note = data["note"]
        if data.get("sql"):
            get_store().execute(data["sql"])
        if data.get("record"):
            get_store().execute(
                "INSERT INTO job_execution (job, attempt, pid) VALUES (?, ?, ?)",
                (self.job_id, self.attempt_count, os.getpid()))
        secret = data.get("secret")
        if secret:
            password = secret  # a local the OOPS must redact
            logger.info("Logging in to the mail server with password=%s",
                        password)
            self.reportProgress(1, 2, "logged in with token=%s" % password)
        if data.get("say"):
            logger.info("%s", data["say"])
        if data.get("say_bytes"):
            # Output that is not UTF-8 (hex in json_data, as JSON holds
            # only text), decoded as a subprocess's output would be.
            logger.info("%s", bytes.fromhex(data["say_bytes"]).decode(
                "utf-8", "surrogateescape"))
        if data.get("window"):
            # The key's running window, open for window_seconds.
            with running_window(self.job_id, data["window"]):
                time.sleep(data.get("window_seconds", 0.02))
        if data.get("sleep"):
            time.sleep(data["sleep"])  # a slow job, for timeout tests
        if data.get("gate"):
            # Wait (up to a minute) until the test creates this file.
            deadline = time.monotonic() + 60
            while not os.path.exists(data["gate"]) and \
                    time.monotonic() < deadline:
                time.sleep(0.02)
        if data.get("until_cancelled"):
            # A long job that stops when asked to (up to this many s).
            deadline = time.monotonic() + data["until_cancelled"]
            while time.monotonic() < deadline:
                self.check_cancelled()
                time.sleep(0.02)
        if data.get("allocate"):
            self.ballast = bytearray(data["allocate"])
        if data.get("exit") is not None:
            os._exit(data["exit"])
        misbehave(self, data)
        if data.get("reach_for_login"):
            reach_for_login(self)
        if data.get("leak"):
            leak(data["leak"])
        if data.get("warn"):
            logger.warning("%s", data["warn"])
        raise_ = data.get("raise_")
        if "retry_until" in data and self.attempt_count < data["retry_until"]:
            raise_ = "retry"
        if raise_ == "error":
            if secret:
                raise ValueError("Login refused: password=%s" % password)
            password = "hunter2"  # a local the OOPS must redact
            raise ValueError("Something broke (%d)." % len(password))
        if raise_ == "unprintable":
            raise UnprintableError()
        raise_as_asked(raise_)
        if data.get("return_set"):
            return {"not", "JSON"}
        return data.get("return_")


def raise_as_asked(raise_):
    """Raise what `raise_` asks for: "retry" (`RetryError`), "user"
    (`UserError`), "suspend" (`SuspendJobException`) or "error"
    (`ValueError`); anything else raises nothing."""
    if raise_ == "retry":
        raise RetryError("Try again later.")
    if raise_ == "user":
        raise UserError("You asked for something impossible.")
    if raise_ == "suspend":
        raise SuspendJobException()
    if raise_ == "error":
        raise ValueError("Something broke.")


@implementer(IDoFooJob)
@provider(IDoFooJobSource)
class DoFooJob(FooJobDerived):
    """Does foo to a Foo."""

    class_job_type = FooJobType.DO_FOO


@provider(IDoBarJobSource)
class DoBarJob(FooJobDerived):
    """Does bar to a Foo."""

    class_job_type = FooJobType.DO_BAR


def register(registry):
    """Register the foo family's sources as utilities in `registry`."""
    registry.registerUtility(DoFooJob, IDoFooJobSource)
    registry.registerUtility(DoBarJob, IDoBarJobSource)
