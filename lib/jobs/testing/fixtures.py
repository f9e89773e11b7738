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

from __future__ import annotations

__all__ = [
    "CapturedOopsFixture",
    "CommitCounterFixture",
    "ComponentsFixture",
    "ConfigFixture",
    "DatabaseFixture",
    "FrozenClockFixture",
]

import os
from datetime import datetime
from typing import Any, Optional, Sequence

import fixtures
import zope.component.testing

from jobs import config as jobs_config
from jobs import schema
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
    :param migrations: an application's `jobs.schema.Migrations`,
        installed after the framework's and the test job type's.
    :ivar uri: the database URI (also in ``JOBS_DATABASE_URI``).
    """

    uri: str

    def __init__(self, kind: str, server: Optional[str] = None,
                 migrations: Sequence[schema.Migrations] = ()):
        super().__init__()
        if kind not in ("postgresql", "sqlite"):
            raise ValueError("Unknown database kind %r" % (kind,))
        self.kind = kind
        self.server = server
        self.migrations = tuple(migrations)

    def _setUp(self) -> None:
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
        if self.migrations:
            # Already there (the per-process database): one look each.
            schema.upgrade(get_store(), self.migrations)

    @property
    def store(self) -> Any:
        """This thread's ``main`` store."""
        return get_store()


class ConfigFixture(fixtures.Fixture):
    """A configuration of the test's own, current in-process and in
    subprocesses.

    It extends `base` and puts OOPS reports and lock files in temporary
    folders.

    :param extra: more config text (sections, overrides).
    :param base: the config it extends: a ``.conf`` file (an
        application's own) or an instance name; default ``testrunner``,
        jobs' own tests' (which exists in jobs' checkout only).
    :ivar path: the config file (also in ``JOBS_CONFIG``).
    :ivar config: the loaded `JobsConfig`.
    """

    def __init__(self, extra: str = "", base: str = "testrunner"):
        super().__init__()
        self.extra = extra
        self.base = base

    def _setUp(self) -> None:
        folder = self.useFixture(fixtures.TempDir()).path
        self.error_dir = os.path.join(folder, "oops")
        self.lock_dir = os.path.join(folder, "lock")
        self.path = os.path.join(folder, "jobs-lazr.conf")
        with open(self.path, "w") as f:
            f.write("[meta]\nextends: %s\n\n"
                    % jobs_config.resolve_instance(self.base))
            f.write("[error_reports]\nerror_dir: %s\n\n" % self.error_dir)
            f.write("[locks]\nlock_dir: %s\n\n" % self.lock_dir)
            f.write(self.extra)
        self.useFixture(fixtures.EnvironmentVariable("JOBS_CONFIG", self.path))
        self.config = jobs_config.load(self.path)
        jobs_config.set_config(self.config)
        self.addCleanup(jobs_config.set_config, None)


class ComponentsFixture(fixtures.Fixture):
    """A clean global component registry with the configured sources."""

    def _setUp(self) -> None:
        zope.component.testing.setUp()
        self.addCleanup(zope.component.testing.tearDown)
        register_components(jobs_config.get_config())


class CapturedOopsFixture(fixtures.Fixture):
    """Keeps every OOPS report published in this process while in use.

    :ivar oopses: the reports (dicts), in publishing order.
    """

    oopses: list[dict[str, Any]]

    def _setUp(self) -> None:
        from jobs.errorlog import capture_listeners
        self.oopses = []
        capture_listeners.append(self.oopses.append)
        self.addCleanup(capture_listeners.remove, self.oopses.append)


class CommitCounterFixture(fixtures.Fixture):
    """Counts the database commits made while in use: Storm store commits,
    and the runner's statements that committed by themselves (sent
    outside a transaction: `jobs.database.prepared.execute`'s `alone`).

    :ivar commits: one entry (the store) per commit.
    """

    commits: list[Any]

    def _setUp(self) -> None:
        from storm.store import Store
        from jobs.database import prepared
        self.commits = []
        original = Store.commit
        direct = prepared.direct_execute
        commits = self.commits

        def counting_commit(store: Any) -> Any:
            commits.append(store)
            return original(store)

        def counting_direct(store: Any, *args: Any) -> Any:
            result = direct(store, *args)
            if result is not None and result.committed:
                commits.append(store)
            return result

        self.useFixture(fixtures.MonkeyPatch(
            "storm.store.Store.commit", counting_commit))
        self.useFixture(fixtures.MonkeyPatch(
            "jobs.database.prepared.direct_execute", counting_direct))


class FrozenClockFixture(fixtures.Fixture):
    """The database clock stopped at `when` (default: now): every `UTCNow`
    — leases, schedules, ``date_created`` — reads it instead of the
    database's clock, so a test moves time without sleeping.

    Use ``self.useFixture(FrozenClockFixture())``, then
    ``fixture.clock.advance(timedelta(minutes=10))``; ``clock.now()``
    is the frozen instant (an aware UTC datetime).

    :param when: an aware UTC datetime; default: the host's now.
    :ivar clock: the clock (`jobs.database.clock`), to `advance()`.
    """

    def __init__(self, when: Optional[datetime] = None):
        super().__init__()
        self.when = when

    def _setUp(self) -> None:
        clock.freeze(self.when)
        self.clock = clock
        self.addCleanup(clock.unfreeze)
