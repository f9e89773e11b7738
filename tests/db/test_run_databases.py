"""Test runs do not collide: each names its databases after itself and
drops them, and only them, when it ends (`jobs.testing.pytest_plugin`)."""

import json
import os
import subprocess
import sys
import textwrap

import fixtures

from jobs.testing.databases import _admin_connect
from jobs.testing.testcase import TestCase

# A suite of a job author's: each test writes down its database's name,
# fills the database, and leaves one more database behind, as a process
# of the run killed before its clean-up would.
PROBE = textwrap.dedent('''
    import json
    import os

    import transaction

    from jobs.model.job import Job
    from jobs.testing.databases import (
        _admin_connect, current_run_id, run_database_name)
    from jobs.testing.testcase import DatabaseTestCase


    class TestProbe(DatabaseTestCase):

        database_kind = "postgresql"
        __test__ = True

        def probe(self, label):
            name = self.db.uri.rsplit("/", 1)[1]
            Job.createMultiple(self.store, 50)
            transaction.commit()
            self.assertEqual(
                50, self.store.execute("SELECT count(*) FROM job").get_one()[0])
            left = run_database_name("left_" + label)
            admin = _admin_connect()
            with admin.cursor() as cursor:
                cursor.execute('CREATE DATABASE "%s"' % left)
            admin.close()
            with open(os.path.join(os.environ["PROBE_OUT"], label), "w") as f:
                json.dump({"run": current_run_id(), "database": name,
                           "left": left}, f)

        def test_a(self):
            self.probe("a")

        def test_b(self):
            self.probe("b")
''')


class TestRunDatabases(TestCase):

    def test_two_runs_at_once_each_keep_and_drop_their_own(self):
        prefix = (os.environ.get("JOBS_TEST_DB_PREFIX") or "jobs_test") + "_p"
        runs = []
        for label in ("one", "two"):
            folder = self.useFixture(fixtures.TempDir()).path
            with open(os.path.join(folder, "test_probe.py"), "w") as f:
                f.write(PROBE)
            out = os.path.join(folder, "out")
            os.mkdir(out)
            env = dict(os.environ, JOBS_TEST_DB_PREFIX=prefix,
                       PROBE_OUT=out)
            env.pop("JOBS_TEST_RUN_ID", None)
            env.pop("PYTEST_XDIST_WORKER", None)
            process = subprocess.Popen(
                [sys.executable, "-m", "pytest", "-q", "-n", "2",
                 "-p", "no:cacheprovider", "-p", "jobs.testing.pytest_plugin",
                 folder],
                cwd=folder, env=env, stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT, text=True)
            runs.append((process, out))
        records = []
        for process, out in runs:
            output = process.communicate(timeout=300)[0]
            self.assertEqual(0, process.returncode, output)
            records.append([json.load(open(os.path.join(out, name)))
                            for name in ("a", "b")])
        run_ids = [{record["run"] for record in run} for run in records]
        self.assertEqual([1, 1], [len(ids) for ids in run_ids])
        self.assertNotEqual(run_ids[0], run_ids[1])
        for run in records:
            for record in run:
                self.assertTrue(record["database"].startswith(
                    "%s_%s_gw" % (prefix, record["run"])), record)
        admin = _admin_connect()
        self.addCleanup(admin.close)
        with admin.cursor() as cursor:
            cursor.execute(
                "SELECT datname FROM pg_database WHERE datname = ANY(%s)",
                ([record[key] for run in records for record in run
                  for key in ("database", "left")],))
            self.assertEqual([], cursor.fetchall())
