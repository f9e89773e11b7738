"""Fixtures for tests of jobs and of job types built on it.

- `ConfigFixture`: a configuration instance of the test's own (temporary
  error and lock folders, extra sections), also exported to subprocesses
  through ``JOBS_CONFIG``.
- `ComponentsFixture`: a clean component registry, with the configured
  sources registered.
- `DatabaseFixture`: a clean database per test, PostgreSQL or SQLite,
  with the framework's and the test job type's schema installed; also
  exported through ``JOBS_DATABASE_URI``.

The databases are made and named by `jobs.testing.databases`.
"""

__all__ = [
    "CapturedOopsFixture",
    "CommitCounterFixture",
    "ComponentsFixture",
    "ConfigFixture",
    "DatabaseFixture",
    "FrozenClockFixture",
]

import os

import fixtures
import zope.component.testing

from jobs import config as jobs_config
from jobs.database import clock, connect, disconnect, get_store
from jobs.registration import register_components
# Re-exported: the names tests and job authors imported from here.
from jobs.testing.databases import (  # noqa: F401
    TEST_ROLES,
    _admin_connect,
    _dsn,
    _PostgresDatabase,
    _SQLiteTemplate,
    create_empty_database,
    create_test_database,
    current_run_id,
    drop_test_database,
    drop_test_run,
    new_test_run,
    postgres_admin_uri,
    run_database_name,
    worker_id,
)


class DatabaseFixture(fixtures.Fixture):
    """A clean database with the test schema, as the ``main`` store.

    :param kind: ``"postgresql"`` or ``"sqlite"``.
    :param server: PostgreSQL only: the URI of a server of the test's own
        (see `jobs.testing.cluster`), where a new database is made;
        None: the shared test server's per-process database.
    :ivar uri: the database URI (also in ``JOBS_DATABASE_URI``).
    """

    def __init__(self, kind, server=None):
        super().__init__()
        if kind not in ("postgresql", "sqlite"):
            raise ValueError("Unknown database kind %r" % (kind,))
        self.kind = kind
        self.server = server

    def _setUp(self):
        if self.server is not None:
            self.uri = create_test_database(run_database_name(), self.server)
        elif self.kind == "postgresql":
            self.uri = _PostgresDatabase.uri()
            _PostgresDatabase.empty(self.uri)
        else:
            folder = self.useFixture(fixtures.TempDir()).path
            path = os.path.join(folder, "jobs.db")
            _SQLiteTemplate.copy_to(path)
            self.uri = "sqlite:" + path
        self.useFixture(fixtures.EnvironmentVariable(
            "JOBS_DATABASE_URI", self.uri))
        connect(self.uri)
        self.addCleanup(disconnect)

    @property
    def store(self):
        """This thread's ``main`` store."""
        return get_store()


class ConfigFixture(fixtures.Fixture):
    """A configuration of the test's own, current in-process and in
    subprocesses.

    It extends `base` (default ``testrunner``) and puts OOPS reports and
    lock files in temporary folders.

    :param extra: more config text (sections, overrides).
    :ivar path: the config file (also in ``JOBS_CONFIG``).
    :ivar config: the loaded `JobsConfig`.
    """

    def __init__(self, extra="", base="testrunner"):
        super().__init__()
        self.extra = extra
        self.base = base

    def _setUp(self):
        folder = self.useFixture(fixtures.TempDir()).path
        self.error_dir = os.path.join(folder, "oops")
        self.lock_dir = os.path.join(folder, "lock")
        self.path = os.path.join(folder, "jobs-lazr.conf")
        with open(self.path, "w") as f:
            # lazr.config resolves extends relative to this file's folder.
            f.write("[meta]\nextends: %s\n\n" % os.path.relpath(
                jobs_config.resolve_instance(self.base), folder))
            f.write("[error_reports]\nerror_dir: %s\n\n" % self.error_dir)
            f.write("[locks]\nlock_dir: %s\n\n" % self.lock_dir)
            f.write(self.extra)
        self.useFixture(fixtures.EnvironmentVariable("JOBS_CONFIG", self.path))
        self.config = jobs_config.load(self.path)
        jobs_config.set_config(self.config)
        self.addCleanup(jobs_config.set_config, None)


class ComponentsFixture(fixtures.Fixture):
    """A clean global component registry with the configured sources."""

    def _setUp(self):
        zope.component.testing.setUp()
        self.addCleanup(zope.component.testing.tearDown)
        register_components(jobs_config.get_config())


class CapturedOopsFixture(fixtures.Fixture):
    """Keeps every OOPS report published in this process while in use.

    :ivar oopses: the reports (dicts), in publishing order.
    """

    def _setUp(self):
        from jobs.errorlog import capture_listeners
        self.oopses = []
        capture_listeners.append(self.oopses.append)
        self.addCleanup(capture_listeners.remove, self.oopses.append)


class CommitCounterFixture(fixtures.Fixture):
    """Counts the database commits made while in use (Storm store commits).

    :ivar commits: one entry (the store) per commit.
    """

    def _setUp(self):
        from storm.store import Store
        self.commits = []
        original = Store.commit
        commits = self.commits

        def counting_commit(store):
            commits.append(store)
            return original(store)

        self.useFixture(fixtures.MonkeyPatch(
            "storm.store.Store.commit", counting_commit))


class FrozenClockFixture(fixtures.Fixture):
    """The database clock stopped at `when` (default: now).

    :ivar clock: the clock, to `advance()`.
    """

    def __init__(self, when=None):
        super().__init__()
        self.when = when

    def _setUp(self):
        clock.freeze(self.when)
        self.clock = clock
        self.addCleanup(clock.unfreeze)
