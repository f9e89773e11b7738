"""Least privilege: ``jobs db roles`` and sections running as their roles.

Two job families with context tables of their own — foo (``foo_job``,
sections do_foo and do_bar) and baz (``baz_job``, section do_baz) — each
get a role. PostgreSQL roles are cluster-wide: the test's are named after
its database, and dropped when it ends.
"""

import io

import fixtures
import psycopg2
import transaction
from testtools.matchers import Contains, Not

from jobs.cli import main
from jobs.interfaces.job import JobStatus
from jobs.log import BufferLogger
from jobs.model.job import Job
from jobs.runner import JobCronScript
from jobs.testing.bazjob import DoBazJob
from jobs.testing.databases import _admin_connect, run_database_name
from jobs.testing.foojob import DoBarJob
from jobs.testing.testcase import DatabaseTestCase

DATABASE = run_database_name()
FOO_ROLE = DATABASE + "_foo"
BAZ_ROLE = DATABASE + "_baz"
TASK_ROLE = DATABASE + "_task"

SECTIONS = """
[components]
register: jobs.demo.register jobs.testing.foojob.register
    jobs.testing.bazjob.register

[do_foo]
dbuser: %(foo)s

[do_bar]
dbuser: %(foo)s

[do_baz]
dbuser: %(baz)s
source_interface: jobs.testing.bazjob.IDoBazJobSource

[do_tasks]
dbuser: %(task)s
tasks: jobs.testing.tasks.*
""" % dict(foo=FOO_ROLE, baz=BAZ_ROLE, task=TASK_ROLE)


def drop_roles():
    """Drop the test's roles and what they were granted in its database."""
    database = _admin_connect(DATABASE)
    server = _admin_connect()
    try:
        for role in (FOO_ROLE, BAZ_ROLE, TASK_ROLE):
            with server.cursor() as cursor:
                cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s",
                               (role,))
                if cursor.fetchone() is None:
                    continue
            with database.cursor() as cursor:
                cursor.execute('DROP OWNED BY "%s"' % role)
            with server.cursor() as cursor:
                cursor.execute('DROP ROLE "%s"' % role)
    finally:
        database.close()
        server.close()


class RolesTestCase(DatabaseTestCase):

    config_extra = SECTIONS

    def jobs(self, *argv):
        out, err = io.StringIO(), io.StringIO()
        self.useFixture(fixtures.MonkeyPatch("sys.stdout", out))
        self.useFixture(fixtures.MonkeyPatch("sys.stderr", err))
        code = main(list(argv))
        return code, out.getvalue(), err.getvalue()


class RolesPostgreSQLTestCase(RolesTestCase):
    """On PostgreSQL, with the roles made (`jobs db roles`)."""

    database_kind = "postgresql"

    def setUp(self):
        super().setUp()
        self.assertEqual(DATABASE, self.db.uri.rsplit("/", 1)[1])
        drop_roles()  # left over by an interrupted run
        self.addCleanup(drop_roles)
        self.addCleanup(transaction.abort)
        code, self.output, err = self.jobs("db", "roles")
        self.assertEqual(0, code, err)

    def as_role(self, role, sql):
        """Run `sql` as `role`; return None or the error's first line."""
        connection = _admin_connect(DATABASE)
        self.addCleanup(connection.close)
        with connection.cursor() as cursor:
            cursor.execute('SET ROLE "%s"' % role)
            try:
                cursor.execute(sql)
            except psycopg2.Error as e:
                return str(e).splitlines()[0]
        return None

    def privilege(self, role, table, privilege, column=None):
        if column is None:
            sql, args = "SELECT has_table_privilege(?, ?, ?)", (
                role, table, privilege)
        else:
            sql, args = "SELECT has_column_privilege(?, ?, ?, ?)", (
                role, table, column, privilege)
        result = self.store.execute(sql, args).get_one()[0]
        transaction.abort()
        return result

    def run_sections(self, *argv):
        script = JobCronScript(test_args=list(argv), commandline_config=True)
        script.logger = BufferLogger()
        code = script.lock_and_run()
        self.store.invalidate()
        return code, script.logger.getLogBuffer()


class TestRolesPostgreSQL(RolesPostgreSQLTestCase):

    __test__ = True

    def test_the_command_names_each_role_and_what_it_gets(self):
        out = self.output
        self.assertThat(out, Contains(
            "Set up role %s (sections: do_foo, do_bar):\n"
            '  CREATE ROLE "%s" LOGIN;\n'
            '  GRANT CONNECT ON DATABASE "%s" TO "%s";\n'
            % (FOO_ROLE, FOO_ROLE, DATABASE, FOO_ROLE)))
        self.assertThat(out, Contains(
            "Set up role %s (sections: do_baz):\n" % BAZ_ROLE))
        self.assertThat(out, Contains(
            '  GRANT SELECT, UPDATE (status, attempt_count, scheduled_start,'
            ' lease_expires, date_started, date_finished, log, progress,'
            ' claimed_by, result, waiting_on, cancelled_by)'
            ' ON "job" TO "%s";' % FOO_ROLE))
        self.assertThat(out, Contains(
            '  GRANT SELECT ON "job_dependency" TO "%s";' % FOO_ROLE))
        self.assertThat(out, Contains(
            '  GRANT SELECT, UPDATE ON "baz_job" TO "%s";' % BAZ_ROLE))
        self.assertThat(out, Contains(
            '  GRANT INSERT ON "job_execution" TO "%s";' % FOO_ROLE))

    def test_each_role_holds_only_what_its_sections_declare(self):
        expected = {
            # (role, table, privilege, column): held?
            (FOO_ROLE, "foo_job", "SELECT", None): True,
            (FOO_ROLE, "foo", "UPDATE", None): True,
            (FOO_ROLE, "job_execution", "INSERT", None): True,
            # Its runners index the OOPS reports they file.
            (FOO_ROLE, "oops_report", "INSERT", None): True,
            (FOO_ROLE, "oops_report", "DELETE", None): False,
            (FOO_ROLE, "job", "SELECT", None): True,
            (FOO_ROLE, "job", "UPDATE", "status"): True,
            (FOO_ROLE, "job", "UPDATE", "max_retries"): False,
            (FOO_ROLE, "job", "UPDATE", "priority"): False,
            (FOO_ROLE, "job", "INSERT", None): False,
            (FOO_ROLE, "job", "DELETE", None): False,
            (FOO_ROLE, "foo_job", "DELETE", None): False,
            (FOO_ROLE, "baz_job", "SELECT", None): False,
            (FOO_ROLE, "baz_job", "UPDATE", None): False,
            (FOO_ROLE, "schema_migration", "SELECT", None): False,
            (BAZ_ROLE, "baz_job", "SELECT", None): True,
            (BAZ_ROLE, "baz_job", "UPDATE", None): True,
            (BAZ_ROLE, "foo_job", "SELECT", None): False,
            (BAZ_ROLE, "foo", "SELECT", None): False,
            (BAZ_ROLE, "job_execution", "INSERT", None): False,
            (BAZ_ROLE, "task_job", "SELECT", None): False,
            # A section of @task functions: task_job, and what its tasks
            # declare (database_privileges).
            (TASK_ROLE, "task_job", "SELECT", None): True,
            (TASK_ROLE, "task_job", "UPDATE", None): True,
            (TASK_ROLE, "task_job", "INSERT", None): False,
            (TASK_ROLE, "job_execution", "INSERT", None): True,
            (TASK_ROLE, "foo_job", "SELECT", None): False,
            # INSERT alone: and SELECT of the new row's key (RETURNING).
            (TASK_ROLE, "foo", "INSERT", None): True,
            (TASK_ROLE, "foo", "SELECT", None): False,
            (TASK_ROLE, "foo", "SELECT", "id"): True,
            (TASK_ROLE, "foo", "SELECT", "name"): False,
            (TASK_ROLE, "job", "UPDATE", "status"): True,
        }
        observed = {key: self.privilege(*key) for key in expected}
        self.assertEqual(expected, observed)

    def test_a_role_cannot_read_or_write_another_sections_table(self):
        denied = "permission denied for table %s"
        self.assertEqual(
            [denied % "baz_job"] * 3 + [denied % "foo_job"] * 3
            + [denied % "foo"],
            [self.as_role(FOO_ROLE, "SELECT * FROM baz_job"),
             self.as_role(FOO_ROLE, "UPDATE baz_job SET json_data = NULL"),
             self.as_role(FOO_ROLE, "INSERT INTO baz_job (job, job_type)"
                                    " VALUES (1, 0)"),
             self.as_role(BAZ_ROLE, "SELECT * FROM foo_job"),
             self.as_role(BAZ_ROLE, "DELETE FROM foo_job"),
             self.as_role(BAZ_ROLE, "INSERT INTO foo_job (job, foo, job_type)"
                                    " VALUES (1, 1, 0)"),
             self.as_role(BAZ_ROLE, "UPDATE foo SET note = 'x'")])
        # What each may do, it can (the denials are not a broken setup).
        self.assertEqual(
            [None, None],
            [self.as_role(FOO_ROLE, "SELECT * FROM foo_job"),
             self.as_role(BAZ_ROLE, "SELECT * FROM baz_job")])

    def test_the_sections_jobs_run_as_their_roles(self):
        foo = self.factory.makeDoFooJob(
            sql="UPDATE foo SET note = current_user", record=True,
            say="hello", progress=[[1, 2, "half"]])
        failing = self.factory.makeDoFooJob(raise_="error")
        retried = self.factory.makeDoFooJob(raise_="retry")
        retried.job.max_retries = 1
        bar = self.factory.makeDoFooJob(job_class=DoBarJob)
        baz = DoBazJob.create()
        batched = [self.factory.makeDoFooJob(record=True) for _ in range(3)]
        transaction.commit()
        code, log = self.run_sections("do_foo", "do_bar", "do_baz")
        self.assertEqual(0, code, log)
        self.assertEqual(
            [JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.WAITING,
             JobStatus.COMPLETED, JobStatus.COMPLETED],
            [foo.status, failing.status, retried.status, bar.status,
             baz.status])
        self.assertEqual(FOO_ROLE, foo.context.foo.note)
        self.assertTrue(baz.context.json_data["done"])
        self.assertThat(foo.job.log, Contains("hello"))
        [oops] = self.oopses()
        self.assertEqual("ValueError", oops["type"])
        # Claimed in a batch, then in child processes, as the role too.
        code, log = self.run_sections("--batch-size", "2", "do_foo")
        self.assertEqual(0, code, log)
        self.assertThat(log, Not(Contains("permission denied")))
        self.assertEqual([JobStatus.COMPLETED] * 3,
                         [job.status for job in batched])
        more = [self.factory.makeDoFooJob(record=True) for _ in range(2)]
        transaction.commit()
        code, log = self.run_sections("--processes", "1", "do_foo")
        self.assertEqual(0, code, log)
        self.assertEqual([JobStatus.COMPLETED] * 2,
                         [job.status for job in more])

    def test_function_jobs_run_as_their_sections_role(self):
        from jobs.testing import tasks
        done = tasks.behave.delay(record=5)
        nosy = tasks.behave.delay(raise_="error")
        # store.add() as a role granted INSERT only (README's example).
        added = tasks.make_foo.delay("made by a role")
        transaction.commit()
        code, log = self.run_sections("do_tasks")
        self.assertEqual(0, code, log)
        self.assertEqual(
            [JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.COMPLETED],
            [self.store.get(Job, job.job_id).status
             for job in (done, nosy, added)])
        self.assertEqual([(5,)], self.store.execute(
            "SELECT job FROM job_execution").get_all())

    def test_a_job_reaching_into_another_sections_table_fails(self):
        nosy_foo = self.factory.makeDoFooJob(sql="SELECT * FROM baz_job")
        nosy_baz = DoBazJob.create(sql="UPDATE foo_job SET json_data = NULL")
        transaction.commit()
        code, log = self.run_sections("do_foo", "do_baz")
        self.assertEqual(0, code, log)
        self.assertEqual([JobStatus.FAILED, JobStatus.FAILED],
                         [nosy_foo.status, nosy_baz.status])
        self.assertEqual(
            ["permission denied for table baz_job",
             "permission denied for table foo_job"],
            [oops["value"].splitlines()[0] for oops in self.oopses()])

    def test_a_job_cannot_reset_its_way_to_the_login_role(self):
        # The runner connected as the role: there is no other role to go
        # back to, and the login role cannot be taken either.
        reset = self.factory.makeDoFooJob(
            sql="RESET ROLE; UPDATE foo SET note = session_user;"
                " SELECT * FROM baz_job")
        login = self.store.execute("SELECT session_user").get_one()[0]
        become = self.factory.makeDoFooJob(sql='SET ROLE "%s"' % login)
        transaction.commit()
        code, log = self.run_sections("do_foo")
        self.assertEqual(0, code, log)
        self.assertEqual([JobStatus.FAILED, JobStatus.FAILED],
                         [reset.status, become.status])
        self.assertEqual(
            ["permission denied for table baz_job",
             'permission denied to set role "%s"' % login],
            [oops["value"].splitlines()[0] for oops in self.oopses()])
        self.assertIsNone(reset.context.foo.note)
        self.assertNotEqual(FOO_ROLE, login)

    def test_the_runner_logs_in_as_the_role(self):
        job = self.factory.makeDoFooJob(
            sql="UPDATE foo SET note = session_user || ' ' || current_user")
        transaction.commit()
        code, log = self.run_sections("do_foo")
        self.assertEqual(0, code, log)
        self.assertEqual(JobStatus.COMPLETED, job.status)
        self.assertEqual("%s %s" % (FOO_ROLE, FOO_ROLE), job.context.foo.note)

    def test_a_role_made_nologin_by_an_older_version_gets_login(self):
        connection = _admin_connect(DATABASE)
        self.addCleanup(connection.close)
        with connection.cursor() as cursor:
            cursor.execute('ALTER ROLE "%s" NOLOGIN' % FOO_ROLE)
        job = self.factory.makeDoFooJob()
        transaction.commit()
        code, log = self.run_sections("do_foo")
        self.assertEqual(2, code)
        self.assertThat(log, Contains(
            "Section do_foo: cannot run as database role %s (see `jobs db"
            " roles`): Cannot connect to the database" % FOO_ROLE))
        self.assertThat(log, Contains(
            'FATAL: role "%s" is not permitted to log in' % FOO_ROLE))
        self.assertEqual(JobStatus.WAITING, job.status)
        code, out, err = self.jobs("db", "roles")
        self.assertEqual(0, code, err)
        self.assertThat(out, Contains('  ALTER ROLE "%s" LOGIN;\n' % FOO_ROLE))
        code, log = self.run_sections("do_foo")
        self.assertEqual(0, code, log)
        self.assertEqual(JobStatus.COMPLETED, job.status)

    def test_running_it_again_narrows_a_widened_role(self):
        connection = _admin_connect(DATABASE)
        self.addCleanup(connection.close)
        with connection.cursor() as cursor:
            cursor.execute('GRANT ALL ON baz_job TO "%s"' % FOO_ROLE)
        self.assertTrue(self.privilege(FOO_ROLE, "baz_job", "SELECT"))
        code, out, err = self.jobs("db", "roles")
        self.assertEqual(0, code, err)
        self.assertThat(out, Not(Contains("CREATE ROLE")))
        self.assertFalse(self.privilege(FOO_ROLE, "baz_job", "SELECT"))

    def test_dry_run_changes_nothing(self):
        drop_roles()
        code, out, err = self.jobs("db", "roles", "--dry-run")
        self.assertEqual(0, code, err)
        self.assertThat(out, Contains(
            "Would set up role %s (sections: do_foo, do_bar):" % FOO_ROLE))
        self.assertIsNone(self.store.execute(
            "SELECT 1 FROM pg_roles WHERE rolname = ?", (FOO_ROLE,)
        ).get_one())


class TestRolesSQLite(RolesTestCase):

    database_kind = "sqlite"
    __test__ = True

    def test_sqlite_has_no_roles(self):
        self.assertEqual(
            (2, "", "jobs: Roles need PostgreSQL: the database is SQLite,"
             " where every section runs as the file's user.\n"),
            self.jobs("db", "roles"))
