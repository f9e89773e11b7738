"""Test cases: `TestCase` (no database) and `DatabaseTestCase`, which runs
on PostgreSQL and on SQLite through `on_each_database`."""

__all__ = [
    "DatabaseTestCase",
    "TestCase",
    "on_each_database",
]

import sys

import testtools
import transaction

from jobs.testing.factory import Factory
from jobs.testing.fixtures import (
    ComponentsFixture,
    ConfigFixture,
    DatabaseFixture,
)

DATABASE_KINDS = ("postgresql", "sqlite")


class TestCase(testtools.TestCase):
    """The base of jobs' tests: testtools, with a configuration of its own
    and a clean component registry."""

    config_extra = ""

    def setUp(self):
        super().setUp()
        self.config_fixture = self.useFixture(ConfigFixture(self.config_extra))
        self.config = self.config_fixture.config
        self.useFixture(ComponentsFixture())

    def oopses(self):
        """Every OOPS report written so far, oldest first (read back)."""
        import glob
        import os

        from jobs.errorlog import read_report
        reports = []
        for path in glob.glob(os.path.join(
                self.config.error_dir, "*", "OOPS-*")):
            reports.append(read_report(
                self.config.error_dir, os.path.basename(path)))
        return sorted(reports, key=lambda report: report["time"])


class DatabaseTestCase(TestCase):
    """A test with a clean database of kind `database_kind`.

    Write the test once and decorate it with `on_each_database`; it then
    runs as ``<Name>_postgresql`` and ``<Name>_sqlite``.
    """

    __test__ = False
    database_kind = None

    def setUp(self):
        super().setUp()
        self.db = self.useFixture(self.make_database_fixture())
        self.store = self.db.store
        self.factory = Factory(self)
        self.addCleanup(transaction.abort)


    def make_database_fixture(self):
        """The test's `DatabaseFixture`; a test needing a server of its
        own (`jobs.testing.cluster`) overrides this."""
        return DatabaseFixture(self.database_kind)


def on_each_database(cls):
    """Class decorator: add ``<Name>_<kind>`` copies of `cls` to its
    module, one per database kind, and keep `cls` itself from running."""
    module = sys.modules[cls.__module__]
    for kind in DATABASE_KINDS:
        name = "%s_%s" % (cls.__name__, kind)
        subclass = type(name, (cls,), {
            "database_kind": kind,
            "__test__": True,
            "__module__": cls.__module__,
            "__qualname__": name,
        })
        setattr(module, name, subclass)
    cls.__test__ = False
    return cls
