"""Sections really isolated on PostgreSQL (issue 14, item 3).

Job code of section do_foo (role ``<db>_foo``, shared with do_bar) tries
to reach what is not its own: another section's rows of the shared
``job`` table (row security, migration 0014), the login role's store,
a connection as the login role. Each fails: run in-process where SQL is
concerned, and in ``--processes`` children for everything.
"""

import json

import fixtures
import transaction

from jobs.interfaces.job import JobStatus
from jobs.testing import tasks
from jobs.testing.bazjob import DoBazJob
from jobs.testing.databases import _admin_connect
from jobs.testing.foojob import DoBarJob
from tests.scripts.test_roles import (
    DATABASE,
    FOO_ROLE,
    RolesPostgreSQLTestCase,
)

# The runner's ways of running a section: in-process, and children.
MODES = {"in-process": (), "processes": ("--processes", "1")}


class TestSectionIsolation(RolesPostgreSQLTestCase):

    __test__ = True

    def rows_as(self, role, sql):
        """The rows `sql` returns to `role` (SET ROLE on an admin
        connection: what the role's own login would see)."""
        connection = _admin_connect(DATABASE)
        self.addCleanup(connection.close)
        with connection.cursor() as cursor:
            cursor.execute('SET ROLE "%s"' % role)
            cursor.execute(sql)
            return cursor.fetchall()

    def others(self):
        """Another section's jobs (do_baz, do_tasks: other roles), and one
        of do_bar (the same role as do_foo: its own)."""
        baz = DoBazJob.create()
        task = tasks.behave.delay(return_="theirs")
        bar = self.factory.makeDoFooJob(job_class=DoBarJob)
        return baz, task, bar

    def test_job_code_cannot_select_another_sections_job_rows(self):
        for mode, argv in MODES.items():
            baz, task, bar = self.others()
            nosy = self.factory.makeDoFooJob(sql=(
                "UPDATE foo SET note = (SELECT string_agg(kind || ' '"
                " || coalesce(base_json_data::text, ''), ',' ORDER BY id)"
                " FROM job WHERE id IN (%d, %d, %d))"
                % (baz.job_id, task.job_id, bar.job_id)))
            transaction.commit()
            code, log = self.run_sections(*argv + ("do_foo",))
            self.assertEqual(0, code, log)
            self.assertEqual(JobStatus.COMPLETED, nosy.status, mode)
            # Only do_bar's job, the role's own.
            self.assertEqual("foo_job:1 ", nosy.context.foo.note, mode)
            self.store.execute("DELETE FROM job")
            transaction.commit()

    def test_job_code_cannot_update_another_sections_job_rows(self):
        for mode, argv in MODES.items():
            baz, task, bar = self.others()
            rogue = self.factory.makeDoFooJob(sql=(
                "WITH cancelled AS (UPDATE job SET status = %d WHERE id IN"
                " (%d, %d) RETURNING id) UPDATE foo SET note ="
                " (SELECT count(*) FROM cancelled)"
                % (JobStatus.CANCELLED.value, baz.job_id, task.job_id)))
            transaction.commit()
            code, log = self.run_sections(*argv + ("do_foo",))
            self.assertEqual(0, code, log)
            self.assertEqual(JobStatus.COMPLETED, rogue.status, mode)
            self.assertEqual("0", rogue.context.foo.note, mode)
            self.assertEqual([JobStatus.WAITING] * 2,
                             [baz.status, task.status], mode)
            # Untouched, they run in their own sections.
            code, log = self.run_sections("do_baz", "do_tasks")
            self.assertEqual(0, code, log)
            self.assertEqual([JobStatus.COMPLETED] * 2,
                             [baz.status, task.status], mode)
            self.store.execute("DELETE FROM job")
            transaction.commit()

    def reach(self):
        """Run a job of do_foo that reaches for the login role in a child,
        started with the login role's URI and a password in its parent's
        environment; return what each way gave it."""
        self.useFixture(fixtures.EnvironmentVariable(
            "JOBS_DATABASE_URI", self.db.uri))
        self.useFixture(fixtures.EnvironmentVariable(
            "PGPASSWORD", "the-login-role's-password"))
        job = self.factory.makeDoFooJob(reach_for_login=True)
        transaction.commit()
        code, log = self.run_sections("--processes", "1", "do_foo")
        self.assertEqual(0, code, log)
        self.assertEqual(JobStatus.COMPLETED, job.status, log)
        return json.loads(job.context.foo.note)

    def test_job_code_in_a_child_gets_no_login_store(self):
        login = self.store.execute("SELECT session_user").get_one()[0]
        self.assertNotEqual(FOO_ROLE, login)
        reached = self.reach()
        self.assertEqual(FOO_ROLE, reached["main_store"])

    def test_job_code_in_a_child_cannot_connect_as_the_login_role(self):
        reached = self.reach()
        self.assertEqual(
            {"configured_uri": FOO_ROLE, "login_role": FOO_ROLE,
             "environment": []},
            {key: reached[key] for key in (
                "configured_uri", "login_role", "environment")})

    def test_a_dependent_in_another_section_is_settled_and_sees_its_dependency(
            self):
        done = DoBazJob.create()
        failing = DoBazJob.create(sql="SELECT 1 / 0")
        waiting = self.factory.makeDoFooJob(depends_on=[done.job_id])
        cancelled = self.factory.makeDoFooJob(depends_on=[failing.job_id])
        transaction.commit()
        self.assertEqual([JobStatus.BLOCKED] * 2,
                         [waiting.status, cancelled.status])
        # do_baz's role settles do_foo's dependents of its jobs.
        code, log = self.run_sections("do_baz")
        self.assertEqual(0, code, log)
        self.assertEqual(
            [JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.WAITING,
             JobStatus.CANCELLED],
            [done.status, failing.status, waiting.status, cancelled.status])
        self.assertEqual(failing.job_id, cancelled.job.cancelled_by)
        # do_foo's role reads the jobs its own depend on, and no other.
        other = DoBazJob.create()
        transaction.commit()
        self.assertEqual(
            sorted([(done.job_id,), (failing.job_id,)]),
            sorted(self.rows_as(FOO_ROLE, "SELECT id FROM job WHERE kind ="
                                " 'baz_job:0'")))
        self.assertNotEqual(done.job_id, other.job_id)
        code, log = self.run_sections("do_foo")
        self.assertEqual(0, code, log)
        self.assertEqual(JobStatus.COMPLETED, waiting.status)

    def test_other_roles_see_every_row(self):
        # The login role, an application's role: not section roles, so
        # row security leaves them as they were.
        viewer = DATABASE + "_viewer"
        server = _admin_connect()
        self.addCleanup(server.close)
        database = _admin_connect(DATABASE)
        self.addCleanup(database.close)
        with server.cursor() as cursor:
            cursor.execute('DROP ROLE IF EXISTS "%s"' % viewer)
            cursor.execute('CREATE ROLE "%s"' % viewer)
        with database.cursor() as cursor:
            cursor.execute('GRANT SELECT ON job, job_role_kind TO "%s"'
                           % viewer)

        def drop():
            with database.cursor() as cursor:
                cursor.execute('DROP OWNED BY "%s"' % viewer)
            with server.cursor() as cursor:
                cursor.execute('DROP ROLE "%s"' % viewer)

        self.addCleanup(drop)
        jobs = self.others()
        transaction.commit()
        self.assertEqual([(3,)], self.rows_as(viewer,
                                              "SELECT count(*) FROM job"))
        self.assertEqual(3, len(jobs))

    def test_roles_need_the_row_security_migration(self):
        # A database not upgraded yet: one line naming the command to run,
        # and the roles are left as they were.
        self.store.execute("DELETE FROM schema_migration WHERE component ="
                           " 'jobs' AND version = 14")
        transaction.commit()
        self.addCleanup(self.restore_ledger)
        self.assertEqual(
            (2, "", "jobs: The database's jobs schema is older than the"
             " code: migration 14 is not applied (run `jobs db"
             " upgrade`).\n"),
            self.jobs("db", "roles"))

    def restore_ledger(self):
        transaction.abort()
        self.store.execute("INSERT INTO schema_migration (component, version,"
                           " name) VALUES ('jobs', 14, 'row_security')")
        transaction.commit()

    def test_explain_names_a_job_its_sections_role_cannot_see(self):
        # A row whose kind is no job type's (made by hand, or by an older
        # version): its section's source sees it (the context row), its
        # role does not.
        job = self.factory.makeDoFooJob()
        seen = self.factory.makeDoFooJob()
        self.store.execute("UPDATE job SET kind = 'foo_job:legacy' WHERE"
                           " id = ?", (job.job_id,))
        transaction.commit()
        code, out, err = self.jobs("explain", str(job.job_id))
        self.assertEqual(0, code, err)
        self.assertIn(
            "Job %d's kind (foo_job:legacy) is not one of role %s's kinds of"
            " job: row"
            " security hides it from section do_foo (jobs db roles records"
            " them)." % (job.job_id, FOO_ROLE), out)
        code, out, err = self.jobs("explain", str(seen.job_id))
        self.assertNotIn("row security", out)
        code, log = self.run_sections("do_foo")
        self.assertEqual([JobStatus.WAITING, JobStatus.COMPLETED],
                         [job.status, seen.status])
