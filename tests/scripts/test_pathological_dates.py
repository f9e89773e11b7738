"""A row that already holds a date past the year 9999 (written by raw SQL,
or by a version that did not check `jobs.bounds`) can still be listed,
shown, cancelled and pruned: Python's datetime cannot hold it, and the
`jobs` command must not die with a traceback on it."""

import json

import transaction
from testtools.matchers import Contains, Not

from jobs.interfaces.job import JobStatus
from jobs.testing.testcase import DatabaseTestCase, on_each_database
from tests.scripts import test_cli

# The date an absurd retry_delay (about 9,500 years) once stored.
FAR = "11533-06-01 00:00:00"
# What it reads as: the last datetime (as psycopg2 reads "infinity").
SHOWN = "9999-12-31 23:59:59"


@on_each_database
class TestPathologicalDates(DatabaseTestCase):

    def jobs(self, *argv):
        code, out, err = test_cli.TestJobsCommand.jobs(self, *argv)
        self.assertThat(err, Not(Contains("Traceback")))
        return code, out, err

    def far_date(self, column, status=None):
        """A job whose `column` holds the year 11533 (and `status`)."""
        made = self.factory.makeDoFooJob()
        transaction.commit()
        value = ("'%s'::timestamp" % FAR
                 if self.database_kind == "postgresql" else "'%s'" % FAR)
        sets = "%s = %s" % (column, value)
        if status is not None:
            sets += ", status = %d" % status.value
        self.store.execute("UPDATE job SET %s WHERE id = %d"
                           % (sets, made.job_id))
        transaction.commit()
        return made.job_id

    def test_a_far_scheduled_start_is_listed(self):
        job_id = self.far_date("scheduled_start")
        code, out, err = self.jobs("list")
        self.assertEqual(0, code, err)
        code, out, err = self.jobs("--format", "json", "list")
        self.assertEqual(0, code, err)
        self.assertEqual([job_id], [row["id"] for row in json.loads(out)])

    def test_a_far_scheduled_start_is_shown(self):
        job_id = self.far_date("scheduled_start")
        code, out, err = self.jobs("show", str(job_id))
        self.assertEqual(0, code, err)
        self.assertThat(out, Contains(SHOWN))

    def test_a_job_with_a_far_scheduled_start_is_cancelled(self):
        job_id = self.far_date("scheduled_start")
        code, out, err = self.jobs("cancel", str(job_id))
        self.assertEqual(0, code, err)
        status, = self.store.execute(
            "SELECT status FROM job WHERE id = ?", (job_id,)).get_one()
        self.assertEqual(JobStatus.CANCELLED.value, status)

    def test_a_job_with_a_far_scheduled_start_is_suspended(self):
        job_id = self.far_date("scheduled_start")
        code, out, err = self.jobs("suspend", str(job_id))
        self.assertEqual(0, code, err)
        status, = self.store.execute(
            "SELECT status FROM job WHERE id = ?", (job_id,)).get_one()
        self.assertEqual(JobStatus.SUSPENDED.value, status)

    def test_a_finished_job_with_a_far_date_is_pruned(self):
        # date_created far in the future too: every date column absurd.
        job_id = self.far_date("scheduled_start", JobStatus.COMPLETED)
        self.store.execute(
            "UPDATE job SET date_finished = '2001-01-01 00:00:00'"
            " WHERE id = ?", (job_id,))
        transaction.commit()
        code, out, err = self.jobs("prune", "--older-than", "30d")
        self.assertEqual(0, code, err)
        self.assertThat(out, Contains("Deleted 1 jobs"))
        self.assertEqual(None, self.store.execute(
            "SELECT id FROM job WHERE id = ?", (job_id,)).get_one())

    def test_status_counts_a_job_with_a_far_date(self):
        self.far_date("scheduled_start")
        code, out, err = self.jobs("--format", "json", "status")
        self.assertEqual(0, code, err)
