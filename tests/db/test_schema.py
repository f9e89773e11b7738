"""The schema installer: idempotent, and upgrades reach the same schema."""

import os

import fixtures
from storm.exceptions import DatabaseError as StormDatabaseError
import transaction

import jobs.testing
from jobs import schema
from jobs.database import connect, disconnect, get_store
from jobs.errors import SchemaError
from jobs.testing.databases import (
    create_empty_database,
    drop_test_database,
    run_database_name,
)
from jobs.testing.foojob import MIGRATIONS as FOO
from jobs.testing.testcase import TestCase

KINDS = ("postgresql", "sqlite")


def migration_files(package, module):
    """``[(package, number, name)]`` of the migration files in `module`'s
    folder (``NNNN_name[.dialect].sql``), in order: read from the folder,
    not from the code under test."""
    found = set()
    for filename in os.listdir(os.path.dirname(module.__file__)):
        if filename[:4].isdigit() and filename.endswith(".sql"):
            stem = filename[5:-len(".sql")]
            for dialect in (".postgresql", ".sqlite"):
                if stem.endswith(dialect):
                    stem = stem[:-len(dialect)]
            found.add((package, int(filename[:4]), stem))
    return sorted(found)


class TestSchema(TestCase):
    """Each test installs into empty databases of both kinds."""

    def empty_database(self, kind, label):
        """Connect the main store to a new, empty database; return its URI."""
        if kind == "sqlite":
            folder = self.useFixture(fixtures.TempDir()).path
            uri = "sqlite:" + os.path.join(folder, label + ".db")
        else:
            name = run_database_name("schema_" + label)
            uri = create_empty_database(name)
            self.addCleanup(self.drop, name)
        connect(uri)
        self.addCleanup(disconnect)
        return uri

    def drop(self, name):
        disconnect()
        drop_test_database(name)

    def described(self, uri, install):
        connect(uri)
        install(get_store())
        result = schema.describe(get_store())
        transaction.abort()
        return result

    def test_installing_twice_changes_nothing(self):
        for kind in KINDS:
            self.empty_database(kind, "twice")
            store = get_store()
            applied = schema.upgrade(store, (schema.FRAMEWORK, FOO))
            self.assertEqual(
                migration_files("jobs", schema)
                + migration_files("jobs.testing", jobs.testing),
                applied)
            first = schema.describe(store)
            self.assertEqual([], schema.upgrade(store, (schema.FRAMEWORK, FOO)))
            self.assertEqual(first, schema.describe(store), kind)
            self.assertIn("job", " ".join(first))
            transaction.abort()
            disconnect()

    def test_upgrade_from_first_migration_equals_fresh_install(self):
        for kind in KINDS:
            fresh = self.described(
                self.empty_database(kind, "fresh"), schema.upgrade)
            disconnect()

            def stepwise(store):
                self.assertEqual([("jobs", 1, "job")],
                                 schema.upgrade(store, target=1))
                self.assertRaises(SchemaError, schema.check, store)
                schema.upgrade(store)

            upgraded = self.described(
                self.empty_database(kind, "stepwise"), stepwise)
            disconnect()
            self.assertEqual(fresh, upgraded, kind)

    def test_check_reports_missing_and_old_schemas(self):
        for kind in KINDS:
            self.empty_database(kind, "check")
            store = get_store()
            error = self.assertRaises(SchemaError, schema.check, store)
            self.assertEqual(
                "The database has no jobs schema: run the schema upgrade "
                "(jobs.schema.upgrade) first.", str(error))
            schema.upgrade(store, target=1)
            error = self.assertRaises(SchemaError, schema.check, store)
            self.assertEqual(
                "The database's jobs schema is older than the code:"
                " migrations %s are not applied (run `jobs db upgrade`)."
                % ", ".join(str(number) for _, number, _ in
                            migration_files("jobs", schema)[1:]),
                str(error))
            schema.upgrade(store)
            schema.check(store)
            transaction.abort()
            disconnect()

    def test_a_failing_migration_leaves_nothing_behind(self):
        bad = schema.Migrations("jobs.bad", "jobs.testing")
        self.useFixture(fixtures.MonkeyPatch(
            "jobs.schema.Migrations.available",
            lambda self, dialect: [(1, "broken", "CREATE TABLE ok_table (x integer);\nNOT SQL;")]
            if self.component == "jobs.bad" else original(self, dialect)))
        for kind in KINDS:
            self.empty_database(kind, "broken")
            store = get_store()
            self.assertRaises(StormDatabaseError, schema.upgrade, store, (bad,))
            self.assertEqual([], schema.describe(store), kind)
            transaction.abort()
            disconnect()


original = schema.Migrations.available
