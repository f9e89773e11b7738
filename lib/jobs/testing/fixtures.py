"""Fixtures for tests of jobs and of job types built on it.

- `ConfigFixture`: a configuration instance of the test's own (temporary
  error and lock folders, extra sections), also exported to subprocesses
  through ``JOBS_CONFIG``.
- `ComponentsFixture`: a clean component registry, with the configured
  sources registered.
- `DatabaseFixture`: a clean database per test, PostgreSQL or SQLite,
  with the framework's and the test job type's schema installed; also
  exported through ``JOBS_DATABASE_URI``.
- `FrozenClockFixture`: the database clock stopped at an instant.
"""

__all__ = [
    "CapturedOopsFixture",
    "CommitCounterFixture",
    "ComponentsFixture",
    "ConfigFixture",
    "DatabaseFixture",
    "FrozenClockFixture",
    "create_test_database",
    "postgres_admin_uri",
]

import os
import shutil
import sqlite3
import subprocess
import tempfile
import threading
import time

import fixtures
import psycopg2
import zope.component.testing

from jobs import config as jobs_config
from jobs import schema
from jobs.database import clock, connect, disconnect, get_store
from jobs.registration import register_components
from jobs.testing.foojob import MIGRATIONS as FOO_MIGRATIONS

TEST_MIGRATIONS = (schema.FRAMEWORK, FOO_MIGRATIONS)
# Roles the test configuration's sections run as (PostgreSQL).
TEST_ROLES = ("dofoo",)
PG_START = ("pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) "
            "main start")


def postgres_admin_uri(database="postgres"):
    """The URI of a PostgreSQL superuser connection to `database`.

    ``JOBS_TEST_PG`` gives the server part (default
    ``postgres://127.0.0.1:5432``).
    """
    server = os.environ.get("JOBS_TEST_PG", "postgres://127.0.0.1:5432")
    return "%s/%s" % (server.rstrip("/"), database)


def _dsn(uri):
    from storm.databases.postgres import make_dsn
    from storm.uri import URI
    return make_dsn(URI(uri))


def _admin_connect(database="postgres", server=None):
    """A psycopg2 autocommit connection to `database`.

    :param server: a server URI (``postgres://user@host:port``); None
        means ``JOBS_TEST_PG``'s server, which is started if it is down.
    """
    if server is not None:
        connection = psycopg2.connect(
            _dsn("%s/%s" % (server.rstrip("/"), database)), connect_timeout=5)
        connection.autocommit = True
        return connection
    dsn = _dsn(postgres_admin_uri(database))
    try:
        connection = psycopg2.connect(dsn, connect_timeout=5)
    except psycopg2.OperationalError:
        subprocess.run(PG_START, shell=True, check=False,
                       capture_output=True)
        deadline = time.monotonic() + 30
        while True:
            try:
                connection = psycopg2.connect(dsn, connect_timeout=5)
                break
            except psycopg2.OperationalError as e:
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        "PostgreSQL is not reachable at %s and could not be "
                        "started with `%s`: %s"
                        % (postgres_admin_uri(database), PG_START, e)) from e
                time.sleep(0.5)
    connection.autocommit = True
    return connection


def worker_id():
    """The pytest-xdist worker's id ("main" outside xdist)."""
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


def create_test_database(name, server=None):
    """(Re)create database `name` with the test schema and roles' grants.

    :param server: a server URI; None means ``JOBS_TEST_PG``'s server.
    :return: the database's URI.
    """
    admin = _admin_connect(server=server)
    with admin.cursor() as cursor:
        cursor.execute('DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % name)
        cursor.execute('CREATE DATABASE "%s"' % name)
        for role in TEST_ROLES:
            # Runners connect as their section's role (trust auth here).
            try:
                cursor.execute('CREATE ROLE "%s" LOGIN' % role)
            except (psycopg2.errors.DuplicateObject,
                    psycopg2.errors.UniqueViolation):
                cursor.execute('ALTER ROLE "%s" LOGIN' % role)
    admin.close()
    uri = ("%s/%s" % (server.rstrip("/"), name) if server is not None
           else postgres_admin_uri(name))
    connect(uri)
    schema.upgrade(get_store(), TEST_MIGRATIONS)
    disconnect()
    grant = _admin_connect(name, server=server)
    with grant.cursor() as cursor:
        for role in TEST_ROLES:
            cursor.execute(
                'GRANT ALL ON ALL TABLES IN SCHEMA public TO "%s"' % role)
            cursor.execute(
                'GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO "%s"' % role)
    grant.close()
    return uri


class _PostgresDatabase:
    """One database per test process, schema installed once, emptied per test."""

    _lock = threading.Lock()
    _ready = None

    @classmethod
    def uri(cls):
        with cls._lock:
            if cls._ready is None:
                cls._ready = cls._create()
            return cls._ready

    @staticmethod
    def _create():
        # JOBS_TEST_DB_PREFIX keeps two checkouts' runs apart on one server.
        return create_test_database("%s_%s" % (
            os.environ.get("JOBS_TEST_DB_PREFIX", "jobs_test"), worker_id()))

    @staticmethod
    def empty(uri):
        """Delete every row of every table but the migration ledger."""
        connection = psycopg2.connect(_dsn(uri))
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
                " AND tablename <> 'schema_migration'")
            tables = [row[0] for row in cursor.fetchall()]
            if tables:
                cursor.execute("TRUNCATE %s RESTART IDENTITY CASCADE"
                               % ", ".join('"%s"' % t for t in tables))
        connection.close()


class _SQLiteTemplate:
    """A SQLite file with the schema installed, copied for each test."""

    _lock = threading.Lock()
    _path = None

    @classmethod
    def copy_to(cls, path):
        with cls._lock:
            if cls._path is None:
                folder = tempfile.mkdtemp(prefix="jobs-sqlite-template-")
                template = os.path.join(folder, "template.db")
                connect("sqlite:" + template)
                store = get_store()
                schema.upgrade(store, TEST_MIGRATIONS)
                disconnect()
                # Fold the WAL into the main file so a plain copy is whole.
                with sqlite3.connect(template) as connection:
                    connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                cls._path = template
            shutil.copyfile(cls._path, path)


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
            self.uri = create_test_database("jobs_test", self.server)
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
