"""Test cases: `TestCase` (no database) and `DatabaseTestCase`, which runs
on PostgreSQL and on SQLite through `on_each_database`."""

from __future__ import annotations

__all__ = [
    "DatabaseTestCase",
    "TestCase",
    "on_each_database",
]

import sys
from typing import Any, Optional, Sequence, TypeVar

import testtools
import transaction

from jobs.schema import Migrations
from jobs.testing.factory import Factory
from jobs.testing.fixtures import (
    ComponentsFixture,
    ConfigFixture,
    DatabaseFixture,
)

DATABASE_KINDS = ("postgresql", "sqlite")
T = TypeVar("T", bound=type)


class TestCase(testtools.TestCase):
    """The base of jobs' tests: testtools, with a configuration of its own
    and a clean component registry.

    :cvar config_extra: config text added to the test's configuration.
    :cvar config_base: the config it extends (see `ConfigFixture`): an
        application's tests name their own ``.conf`` file.
    """

    config_extra = ""
    config_base = "testrunner"

    def setUp(self) -> None:
        super().setUp()
        self.config_fixture = self.useFixture(
            ConfigFixture(self.config_extra, base=self.config_base))
        self.config = self.config_fixture.config
        self.useFixture(ComponentsFixture())

    def oopses(self) -> list[dict[str, Any]]:
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

    :cvar migrations: the application's `jobs.schema.Migrations` to
        install besides the framework's.
    """

    __test__ = False
    database_kind: Optional[str] = None
    migrations: Sequence[Migrations] = ()

    def setUp(self) -> None:
        super().setUp()
        self.db = self.useFixture(self.make_database_fixture())
        self.store = self.db.store
        self.factory = Factory(self)
        self.addCleanup(transaction.abort)

    def make_database_fixture(self) -> DatabaseFixture:
        """The test's `DatabaseFixture`; a test needing a server of its
        own (`jobs.testing.cluster`) overrides this."""
        if self.database_kind is None:
            raise TypeError("%s sets no database_kind: decorate it with"
                            " @on_each_database." % type(self).__name__)
        return DatabaseFixture(self.database_kind,
                               migrations=self.migrations)


def on_each_database(cls: T) -> T:
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
    setattr(cls, "__test__", False)
    return cls
