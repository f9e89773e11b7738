"""Test databases: where they live, what they are called, and how a test
run makes and drops them.

Test databases on the shared PostgreSQL server are named per run
(`run_database_name`): ``<prefix>_<run id>_<worker>[_<label>]``, where
the prefix is ``JOBS_TEST_DB_PREFIX`` (default ``jobs_test``), the run id
is made once per test run (``JOBS_TEST_RUN_ID``, which pytest's
controller sets and passes to its xdist workers) and the worker is the
xdist worker's id. A run drops only the databases (and roles) named
after its own run id: two checkouts can test on one server at once.
- `FrozenClockFixture`: the database clock stopped at an instant.
"""

from __future__ import annotations

__all__ = [
    "TEST_MIGRATIONS",
    "create_empty_database",
    "create_test_database",
    "current_run_id",
    "drop_test_database",
    "drop_test_run",
    "new_test_run",
    "postgres_admin_uri",
    "run_database_name",
    "worker_id",
]

import atexit
import os
import re
import shutil
import sqlite3
import subprocess
import tempfile
import threading
import time
import uuid
from typing import Any, Optional

import psycopg2

from jobs import schema
from jobs.database import connect, disconnect, get_store
from jobs.testing.foojob import MIGRATIONS as FOO_MIGRATIONS

TEST_MIGRATIONS = (schema.FRAMEWORK, FOO_MIGRATIONS)
# Roles the test configuration's sections run as (PostgreSQL).
TEST_ROLES = ("dofoo",)
# The advisory lock (on the server's ``postgres`` database) under which a
# run creates TEST_ROLES.
ROLES_LOCK = 0x6A6F6273
PG_START = ("pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) "
            "main start")


def postgres_admin_uri(database: str = "postgres") -> str:
    """The URI of a PostgreSQL superuser connection to `database`.

    ``JOBS_TEST_PG`` gives the server part (default
    ``postgres://127.0.0.1:5432``).
    """
    server = os.environ.get("JOBS_TEST_PG", "postgres://127.0.0.1:5432")
    return "%s/%s" % (server.rstrip("/"), database)


def _dsn(uri: str) -> str:
    from storm.databases.postgres import make_dsn
    from storm.uri import URI
    return make_dsn(URI(uri))


def _admin_connect(database: str = "postgres",
                   server: Optional[str] = None) -> Any:
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


def worker_id() -> str:
    """The pytest-xdist worker's id ("main" outside xdist)."""
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


RUN_ID_VARIABLE = "JOBS_TEST_RUN_ID"
# PostgreSQL truncates longer identifiers (NAMEDATALEN - 1).
MAX_IDENTIFIER = 63


def new_test_run() -> str:
    """Start a new test run: make a fresh run id, export it (to this
    process's children and, from pytest's controller, to its workers) and
    return it."""
    run_id = uuid.uuid4().hex[:8]
    os.environ[RUN_ID_VARIABLE] = run_id
    return run_id


def current_run_id() -> str:
    """This test run's id (``JOBS_TEST_RUN_ID``), made on first use when
    no one set it: every process of one run shares it."""
    return os.environ.get(RUN_ID_VARIABLE) or new_test_run()


def _run_prefix() -> str:
    """What every database and role name of this run starts with."""
    prefix = os.environ.get("JOBS_TEST_DB_PREFIX") or "jobs_test"
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", prefix):
        raise ValueError(
            "JOBS_TEST_DB_PREFIX=%r: use lower-case letters, digits and _."
            % prefix)
    return "%s_%s_" % (prefix, current_run_id())


def run_database_name(label: Optional[str] = None) -> str:
    """The name of this process's test database (with `label`, another
    database of the same test process), unique to this test run.

    :raises ValueError: when the name would be too long for PostgreSQL.
    """
    name = _run_prefix() + worker_id().lower()
    if label:
        name += "_" + label
    if len(name) > MAX_IDENTIFIER - 8:  # room for a role's "_foo"
        raise ValueError("Test database name %r is too long: shorten"
                         " JOBS_TEST_DB_PREFIX." % name)
    return name


# {name: pid}: the databases made on the shared server, by the process
# that made each (a forked child must not drop its parent's at its exit).
_created: dict[str, int] = {}


def create_empty_database(name: str, server: Optional[str] = None) -> str:
    """Create the empty database `name`; return its URI.

    `name` should come from `run_database_name`: a leftover of the same
    name can only be this run's, so it is dropped first.

    :param server: a server URI; None means ``JOBS_TEST_PG``'s server.
    """
    admin = _admin_connect(server=server)
    with admin.cursor() as cursor:
        cursor.execute('DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % name)
        cursor.execute('CREATE DATABASE "%s"' % name)
    admin.close()
    if server is None:
        _created[name] = os.getpid()
        return postgres_admin_uri(name)
    return "%s/%s" % (server.rstrip("/"), name)


def drop_test_database(name: str, server: Optional[str] = None) -> None:
    """Drop database `name`, which this process created."""
    admin = _admin_connect(server=server)
    with admin.cursor() as cursor:
        cursor.execute('DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % name)
    admin.close()
    if server is None:
        _created.pop(name, None)


def create_test_database(name: str, server: Optional[str] = None) -> str:
    """(Re)create database `name` with the test schema and roles' grants.

    :param server: a server URI; None means ``JOBS_TEST_PG``'s server.
    :return: the database's URI.
    """
    uri = create_empty_database(name, server)
    admin = _admin_connect(server=server)
    with admin.cursor() as cursor:
        # Runners connect as their section's role (trust auth here).
        # Roles are the server's, shared by every run (never dropped):
        # runs starting together take turns, since two changes of one
        # role at once fail ("tuple concurrently updated").
        cursor.execute("SELECT pg_advisory_lock(%s)", (ROLES_LOCK,))
        try:
            for role in TEST_ROLES:
                cursor.execute("SELECT rolcanlogin FROM pg_roles"
                               " WHERE rolname = %s", (role,))
                row = cursor.fetchone()
                if row is None:
                    cursor.execute('CREATE ROLE "%s" LOGIN' % role)
                elif not row[0]:
                    cursor.execute('ALTER ROLE "%s" LOGIN' % role)
        finally:
            cursor.execute("SELECT pg_advisory_unlock(%s)", (ROLES_LOCK,))
    admin.close()
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


def drop_test_run(everything: bool = False) -> list[str]:
    """Drop the test databases this process made on the shared server;
    with `everything`, every database and role named after this run (what
    its other processes made, or left behind when killed).

    Never starts the server, and never fails: a test run's end must not.

    :return: the names dropped.
    """
    mine = [name for name, pid in _created.items() if pid == os.getpid()]
    _SQLiteTemplate.discard()
    if not mine and not everything:
        return []
    disconnect()
    _PostgresDatabase.forget()
    try:
        admin = psycopg2.connect(_dsn(postgres_admin_uri()), connect_timeout=5)
    except psycopg2.Error:
        return []
    admin.autocommit = True
    dropped = []
    try:
        with admin.cursor() as cursor:
            names = set(mine)
            roles = []
            if everything:
                pattern = _run_prefix().replace("_", r"\_") + "%"
                cursor.execute("SELECT datname FROM pg_database"
                               " WHERE datname LIKE %s", (pattern,))
                names.update(row[0] for row in cursor.fetchall())
                cursor.execute("SELECT rolname FROM pg_roles"
                               " WHERE rolname LIKE %s", (pattern,))
                roles = [row[0] for row in cursor.fetchall()]
            for name in sorted(names):
                cursor.execute(
                    'DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % name)
                dropped.append(name)
            # Their databases gone, the run's roles own nothing more.
            for role in roles:
                try:
                    cursor.execute('DROP ROLE IF EXISTS "%s"' % role)
                    dropped.append(role)
                except psycopg2.Error:
                    pass  # it holds something elsewhere: leave it
    except psycopg2.Error:
        pass
    finally:
        admin.close()
    for name in dropped:
        _created.pop(name, None)
    return dropped


# Job authors' suites run outside our conftest: their databases go when
# their process ends.
atexit.register(drop_test_run)


class _PostgresDatabase:
    """One database per test process, schema installed once, emptied per test."""

    _lock = threading.Lock()
    _ready: Optional[str] = None

    @classmethod
    def uri(cls) -> str:
        with cls._lock:
            if cls._ready is None:
                cls._ready = cls._create()
            return cls._ready

    @staticmethod
    def _create() -> str:
        return create_test_database(run_database_name())

    @classmethod
    def forget(cls) -> None:
        with cls._lock:
            cls._ready = None

    @staticmethod
    def empty(uri: str) -> None:
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
    _path: Optional[str] = None
    _owner: Optional[int] = None

    @classmethod
    def copy_to(cls, path: str) -> None:
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
                cls._owner = os.getpid()
            shutil.copyfile(cls._path, path)

    @classmethod
    def discard(cls) -> None:
        """Remove the template (made again when next needed)."""
        with cls._lock:
            if cls._path is not None and cls._owner == os.getpid():
                shutil.rmtree(os.path.dirname(cls._path), ignore_errors=True)
                cls._path = None
