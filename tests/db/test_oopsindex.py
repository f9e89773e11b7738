"""The OOPS index: a row per report, the commands that read it, prune,
reindex — in-process on both databases, and two runner processes as two
"hosts" on PostgreSQL."""

import json
import os

import fixtures
import transaction
from testtools.matchers import Contains

from jobs.interfaces.job import JobStatus
from jobs.log import DevNullLogger
from jobs.model.oopsreport import OopsReport
from jobs.runner import JobRunner
from jobs.sections import error_reporter_for
from jobs.testing.script import run_script, jobs_command
from jobs.testing.testcase import DatabaseTestCase, on_each_database


class CommandMixin:

    def jobs(self, *argv):
        return jobs_command(self.store, *argv)

    def run_jobs(self, *jobs, logger=None):
        runner = JobRunner(list(jobs), logger or DevNullLogger(),
                           error_reporter=error_reporter_for("do_foo"))
        runner.runAll()
        return runner

    def index_rows(self):
        transaction.abort()
        return list(self.store.find(OopsReport).order_by(OopsReport.id))


@on_each_database
class TestOopsIndex(CommandMixin, DatabaseTestCase):

    config_extra = "[error_reports]\nhost: alpha\n"

    def test_a_failed_job_s_report_is_indexed(self):
        job = self.factory.makeDoFooJob(raise_="error")
        transaction.commit()
        self.run_jobs(job)
        [report] = self.oopses()
        [row] = self.index_rows()
        self.assertEqual(
            (report["id"], job.job_id, "do_foo", "ValueError", "Something broke (7).",
             "alpha"),
            (row.id, row.job_id, row.section, row.exception_type,
             row.exception_value, row.host))
        self.assertTrue(row.fingerprint.startswith("ValueError at "),
                        row.fingerprint)
        self.assertEqual(JobStatus.FAILED, job.status)

    def test_an_index_that_cannot_be_written_loses_no_report(self):
        def refuse(store, rows):
            raise RuntimeError("no index today")
        self.useFixture(fixtures.MonkeyPatch(
            "jobs.oopsindex.insert_rows", refuse))
        job = self.factory.makeDoFooJob(raise_="error")
        transaction.commit()
        logged = self.useFixture(fixtures.FakeLogger("jobs.oopsindex"))
        self.run_jobs(job)
        self.assertEqual(1, len(self.oopses()))
        self.assertEqual([], self.index_rows())
        self.assertEqual(JobStatus.FAILED, job.status)
        self.assertThat(logged.output, Contains(
            "was written but not indexed (RuntimeError: no index today)"))
        # The file is the source of truth: reindex finds it.
        self.useFixture(fixtures.MonkeyPatch("jobs.oopsindex.insert_rows",
                                             _real_insert_rows))
        self.assertEqual((0, "Indexed 1 OOPS reports of %s.\n"
                          % self.config.error_dir, ""),
                         self.jobs("oops", "reindex"))
        [row] = self.index_rows()
        self.assertEqual((job.job_id, "do_foo", "alpha"),
                         (row.job_id, row.section, row.host))
        self.assertEqual("Indexed 0 OOPS reports of %s.\n"
                         % self.config.error_dir,
                         self.jobs("oops", "reindex")[1])

    def test_list_summary_and_show_read_the_index(self):
        jobs = [self.factory.makeDoFooJob(raise_="error") for _ in range(3)]
        transaction.commit()
        self.run_jobs(*jobs)
        code, out, err = self.jobs("--format", "json", "oops", "list")
        self.assertEqual(0, code, err)
        listed = json.loads(out)
        self.assertEqual(sorted(job.job_id for job in jobs),
                         sorted(row["job_id"] for row in listed))
        self.assertEqual({"alpha"}, {row["host"] for row in listed})
        code, out, err = self.jobs("--format", "json", "oops", "summary")
        [group] = json.loads(out)
        self.assertEqual((3, 1), (group["count"], group["hosts"]))
        code, out, _ = self.jobs("--format", "json", "oops", "list",
                                 "--fingerprint", group["fingerprint"],
                                 "--limit", "2")
        self.assertEqual(2, len(json.loads(out)))
        code, out, _ = self.jobs("oops", "show", listed[0]["id"])
        self.assertThat(out, Contains("Something broke (7)."))
        self.assertThat(out, Contains("traceback:"))

    def test_show_of_another_host_s_report_names_the_host(self):
        self.store.execute(
            "INSERT INTO oops_report (id, reported, job_id, section,"
            " exception_type, exception_value, fingerprint, host) VALUES"
            " ('OOPS-elsewhere', '2026-11-01 10:00:00', 7, 'do_foo',"
            " 'KeyError', 'x', 'KeyError at a.py:1 in run', 'beta')")
        transaction.commit()
        code, out, err = self.jobs("oops", "show", "OOPS-elsewhere")
        self.assertEqual(2, code)
        self.assertEqual(
            "jobs: OOPS report OOPS-elsewhere is on host beta (job 7, section"
            " do_foo, KeyError: x): run `jobs oops show OOPS-elsewhere`"
            " there.\n", err)
        code, _, err = self.jobs("oops", "show", "OOPS-nowhere")
        self.assertThat(err, Contains("No OOPS report OOPS-nowhere in the"
                                      " index"))

    def test_prune_removes_index_rows_and_local_files(self):
        old = self.factory.makeDoFooJob(raise_="error")
        kept = self.factory.makeDoFooJob(raise_="error")
        transaction.commit()
        self.run_jobs(old, kept)
        # Another host's report of the pruned job: its row goes, its file
        # (there) cannot.
        self.store.execute(
            "INSERT INTO oops_report (id, reported, job_id, section,"
            " exception_type, exception_value, fingerprint, host) VALUES"
            " ('OOPS-remote', '2026-11-01 10:00:00', ?, 'do_foo',"
            " 'KeyError', 'x', 'KeyError at a.py:1 in run', 'beta')",
            (old.job_id,))
        self.store.execute(
            "UPDATE job SET date_finished = '2000-01-01 00:00:00'"
            " WHERE id = ?", (old.job_id,))
        transaction.commit()
        code, out, err = self.jobs("prune", "--older-than", "30d")
        self.assertEqual(0, code, err)
        self.assertThat(out, Contains("Deleted 1 jobs finished before"))
        self.assertThat(out, Contains("and 1 OOPS report files of theirs."))
        self.assertThat(out, Contains("1 of their OOPS reports are on other"
                                      " hosts"))
        [row] = self.index_rows()
        self.assertEqual(kept.job_id, row.job_id)
        self.assertEqual([kept.job_id],
                         [report["job_id"] for report in self.oopses()])
        # Piped: no progress bar on stderr.
        self.assertEqual("", err)

    def test_show_lists_the_job_s_reports_from_the_index(self):
        job = self.factory.makeDoFooJob(raise_="error")
        transaction.commit()
        self.run_jobs(job)
        self.store.execute(
            "INSERT INTO oops_report (id, reported, job_id, section,"
            " exception_type, exception_value, fingerprint, host) VALUES"
            " ('OOPS-remote', '2030-11-01 10:00:00', ?, 'do_foo',"
            " 'KeyError', 'x', 'KeyError at a.py:1 in run', 'beta')",
            (job.job_id,))
        transaction.commit()
        code, out, _ = self.jobs("--format", "json", "show", str(job.job_id))
        [local] = self.oopses()
        self.assertEqual([local["id"], "OOPS-remote"],
                         json.loads(out)["oops_ids"])

    def test_oops_prune_deletes_old_days_here(self):
        job = self.factory.makeDoFooJob(raise_="error")
        transaction.commit()
        self.run_jobs(job)
        [day] = os.listdir(self.config.error_dir)
        os.rename(os.path.join(self.config.error_dir, day),
                  os.path.join(self.config.error_dir, "2001-01-01"))
        code, out, _ = self.jobs("oops", "prune", "--older-than", "1d")
        self.assertEqual("Deleted 1 OOPS reports (1 days) from %s.\n"
                         % self.config.error_dir, out)
        self.assertEqual([], self.index_rows())
        self.assertEqual([], os.listdir(self.config.error_dir))


def _real_insert_rows(store, rows):
    from jobs.model.oopsreport import insert_rows
    return insert_rows(store, rows)


class TestTwoHosts(CommandMixin, DatabaseTestCase):
    """Two runner processes with their own report folders and host names:
    `jobs oops list` and `jobs show` list the reports of both."""

    database_kind = "postgresql"
    __test__ = True

    def host_config(self, name):
        folder = self.useFixture(fixtures.TempDir()).path
        path = os.path.join(folder, "host.conf")
        with open(path, "w") as f:
            f.write("[meta]\nextends: %s\n\n[error_reports]\nerror_dir: %s\n"
                    "host: %s\n\n[locks]\nlock_dir: %s\n" % (
                        self.config_fixture.path,
                        os.path.join(folder, "oops"), name,
                        os.path.join(folder, "lock")))
        return path

    def test_reports_of_two_hosts_are_listed_together(self):
        first = self.factory.makeDoFooJob(raise_="error")
        transaction.commit()
        code, out, err = run_script(
            "cronscripts/run_jobs.py", ["do_foo"],
            env={"JOBS_CONFIG": self.host_config("alpha")})
        self.assertEqual(0, code, err)
        second = self.factory.makeDoFooJob(raise_="error")
        self.store.execute("UPDATE job SET status = 0, attempt_count = 0"
                           " WHERE id = ?", (first.job_id,))
        transaction.commit()
        code, out, err = run_script(
            "cronscripts/run_jobs.py", ["do_foo"],
            env={"JOBS_CONFIG": self.host_config("beta")})
        self.assertEqual(0, code, err)
        code, out, err = self.jobs("--format", "json", "oops", "list")
        listed = json.loads(out)
        self.assertEqual(
            [("alpha", first.job_id), ("beta", first.job_id),
             ("beta", second.job_id)],
            sorted((row["host"], row["job_id"]) for row in listed))
        code, out, _ = self.jobs("--format", "json", "show",
                                 str(first.job_id))
        self.assertEqual(
            sorted(row["id"] for row in listed
                   if row["job_id"] == first.job_id),
            sorted(json.loads(out)["oops_ids"]))
        # Neither report is in this test's own folder: show says where.
        alpha = [row["id"] for row in listed if row["host"] == "alpha"][0]
        code, _, err = self.jobs("oops", "show", alpha)
        self.assertThat(err, Contains("is on host alpha"))
