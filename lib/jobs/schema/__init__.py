"""The framework's tables, as numbered migrations, and the installer.

A *component* (the framework is ``jobs``; an application or the test
harness adds its own) is a package of SQL files named
``NNNN_name.sql`` (both dialects) or ``NNNN_name.<dialect>.sql``, where
dialect is ``postgresql`` or ``sqlite``. `upgrade` applies, in order and
in one transaction, the migrations a database has not had yet, recording
each in ``schema_migration``; running it again changes nothing.
"""

__all__ = [
    "FRAMEWORK",
    "Migrations",
    "check",
    "describe",
    "upgrade",
]

import importlib.resources
import os
import re

import transaction

from jobs.database import dialect
from jobs.errors import SchemaError

_MIGRATION_FILE = re.compile(
    r"^(?P<version>\d{4})_(?P<name>\w+?)(\.(?P<dialect>postgresql|sqlite))?"
    r"\.sql$")

_LEDGER = {
    "postgresql": (
        "CREATE TABLE IF NOT EXISTS schema_migration ("
        " component text NOT NULL, version integer NOT NULL,"
        " name text NOT NULL,"
        " applied timestamp without time zone NOT NULL"
        " DEFAULT (CURRENT_TIMESTAMP AT TIME ZONE 'UTC'),"
        " PRIMARY KEY (component, version))"),
    "sqlite": (
        "CREATE TABLE IF NOT EXISTS schema_migration ("
        " component TEXT NOT NULL, version INTEGER NOT NULL,"
        " name TEXT NOT NULL,"
        " applied TEXT NOT NULL"
        " DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now')),"
        " PRIMARY KEY (component, version))"),
}


class Migrations:
    """The numbered SQL migrations of one component.

    :param component: the name recorded in ``schema_migration``.
    :param package: the dotted name of the package holding the SQL files.
    """

    def __init__(self, component, package):
        self.component = component
        self.package = package

    def available(self, dialect_name):
        """Return ``[(version, name, sql)]`` for `dialect_name`, in order."""
        found = {}
        for entry in importlib.resources.files(self.package).iterdir():
            match = _MIGRATION_FILE.match(entry.name)
            if match is None:
                continue
            if match["dialect"] not in (None, dialect_name):
                continue
            version = int(match["version"])
            if version in found:
                raise SchemaError(
                    "%s has two migrations numbered %d for %s."
                    % (self.component, version, dialect_name))
            found[version] = (version, match["name"], entry.read_text())
        return [found[v] for v in sorted(found)]


FRAMEWORK = Migrations("jobs", "jobs.schema")


def split_statements(sql):
    """Split a migration's text into statements (``;`` ends a line)."""
    statements, current = [], []
    for line in sql.splitlines():
        if line.strip().startswith("--") or not line.strip():
            continue
        current.append(line)
        if line.rstrip().endswith(";"):
            statements.append("\n".join(current).rstrip().rstrip(";"))
            current = []
    if current:
        statements.append("\n".join(current))
    return statements


def applied_versions(store, component):
    """Return the set of `component`'s versions recorded in `store`."""
    if not _has_ledger(store):
        return set()
    return {row[0] for row in store.execute(
        "SELECT version FROM schema_migration WHERE component = ?",
        (component,))}


def _has_ledger(store):
    if dialect(store).information_schema:
        query = ("SELECT 1 FROM information_schema.tables"
                 " WHERE table_schema = current_schema()"
                 " AND table_name = 'schema_migration'")
    else:
        query = ("SELECT 1 FROM sqlite_master"
                 " WHERE type = 'table' AND name = 'schema_migration'")
    return store.execute(query).get_one() is not None


def upgrade(store, migrations=(FRAMEWORK,), target=None):
    """Apply the migrations `store`'s database lacks, then commit.

    :param migrations: the components to install, in dependency order.
    :param target: apply only versions up to this number (for tests of
        upgrades); None for all.
    :return: list of ``(component, version, name)`` applied.
    :raises SchemaError: for a malformed set of migrations.
    Commits; aborts and re-raises when a statement fails.
    """
    name = dialect(store).name
    applied = []
    try:
        store.execute(_LEDGER[name])
        for component in migrations:
            done = applied_versions(store, component.component)
            for version, title, sql in component.available(name):
                if version in done or (target is not None and version > target):
                    continue
                for statement in split_statements(sql):
                    store.execute(statement)
                store.execute(
                    "INSERT INTO schema_migration (component, version, name)"
                    " VALUES (?, ?, ?)", (component.component, version, title))
                applied.append((component.component, version, title))
        transaction.commit()
    except BaseException:
        transaction.abort()
        raise
    return applied


def check(store, migrations=(FRAMEWORK,)):
    """Raise `SchemaError` unless every migration has been applied.

    Read-only.
    """
    name = dialect(store).name
    for component in migrations:
        done = applied_versions(store, component.component)
        missing = [v for v, _, _ in component.available(name) if v not in done]
        if not done:
            raise SchemaError(
                "The database has no %s schema: run the schema upgrade "
                "(jobs.schema.upgrade) first." % component.component)
        if missing:
            which = ("migration %d is" % missing[0] if len(missing) == 1
                     else "migrations %s are" % ", ".join(map(str, missing)))
            raise SchemaError(
                "The database's %s schema is older than the code: %s not"
                " applied (run `jobs db upgrade`)."
                % (component.component, which))


def differences(store, migrations=(FRAMEWORK,)):
    """Compare the live schema with what `migrations` create.

    The expected schema is built in a scratch place — on PostgreSQL a
    temporary schema inside a transaction that is rolled back, on SQLite a
    temporary database — and both are described. Only the objects the
    migrations create are compared; an application's own tables are not
    the framework's business.

    :return: ``(missing, unexpected)`` lists of description lines.
    """
    name = dialect(store).name
    if dialect(store).information_schema:
        scratch = "jobs_verify_%d" % os.getpid()
        try:
            store.execute("CREATE SCHEMA %s" % scratch)
            store.execute("SET LOCAL search_path TO %s" % scratch)
            _apply_all(store, name, migrations)
            expected = [line.replace(scratch + ".", "")
                        for line in describe(store)]
        finally:
            transaction.abort()
    else:
        import tempfile
        from storm.database import create_database
        from storm.store import Store
        with tempfile.TemporaryDirectory() as folder:
            scratch = Store(create_database(
                "jobs-sqlite:%s/verify.db" % folder))
            try:
                _apply_all(scratch, name, migrations)
                expected = describe(scratch)
            finally:
                scratch.close()
    live = [line.replace("public.", "") for line in describe(store)]
    transaction.abort()
    expected = [line.replace("public.", "") for line in expected]
    names = {_object(line) for line in expected}
    live = [line for line in live if _object(line) in names]
    missing = sorted(set(expected) - set(live))
    unexpected = sorted(set(live) - set(expected))
    return missing, unexpected


def _object(line):
    return line.split(" | ")[1]


def _apply_all(store, dialect_name, migrations):
    store.execute(_LEDGER[dialect_name])
    for component in migrations:
        for _, _, sql in component.available(dialect_name):
            for statement in split_statements(sql):
                store.execute(statement)


def describe(store):
    """Return a sorted list of lines describing the live schema.

    Two databases with equal descriptions have the same tables, columns,
    types, defaults, nullability and indexes. Read-only.
    """
    if dialect(store).information_schema:
        columns = store.execute(
            "SELECT table_name, column_name, data_type, is_nullable,"
            " coalesce(column_default, '') FROM information_schema.columns"
            " WHERE table_schema = current_schema()")
        indexes = store.execute(
            "SELECT tablename, indexname, indexdef FROM pg_indexes"
            " WHERE schemaname = current_schema()")
        constraints = store.execute(
            "SELECT conrelid::regclass::text, conname,"
            " pg_get_constraintdef(oid) FROM pg_constraint"
            " WHERE connamespace = current_schema()::regnamespace")
        rows = [("column",) + tuple(r) for r in columns]
        rows += [("index",) + tuple(r) for r in indexes]
        rows += [("constraint",) + tuple(r) for r in constraints]
    else:
        rows = [tuple(r) for r in store.execute(
            "SELECT type, name, coalesce(sql, '') FROM sqlite_master"
            " WHERE name NOT LIKE 'sqlite_%'")]
    return sorted(" | ".join(map(str, row)) for row in rows)
