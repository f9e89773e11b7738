"""The `jobs` command, in-process on both databases, and once as a
subprocess."""

import json
import os
import sys

import fixtures
import transaction
from testtools.matchers import Contains

from jobs.interfaces.job import JobStatus
from jobs.runner import JobRunner
from jobs.log import DevNullLogger
from jobs.testing.script import jobs_command
from jobs.testing.testcase import DatabaseTestCase, on_each_database


@on_each_database
class TestJobsCommand(DatabaseTestCase):

    def jobs(self, *argv):
        return jobs_command(self.store, *argv)

    def run_all(self, *jobs):
        JobRunner(list(jobs), DevNullLogger()).runAll()

    def test_db_upgrade_and_verify(self):
        self.assertEqual((0, "Applied: nothing (up to date)\n", ""),
                         self.jobs("db", "upgrade"))
        self.assertEqual((0, "The schema is up to date.\n", ""),
                         self.jobs("db", "verify"))

    def test_db_verify_names_what_differs(self):
        self.store.execute("DROP INDEX job__status__id__idx")
        transaction.commit()
        # The PostgreSQL test database outlives the test: put it back.
        self.addCleanup(self.restore_index)
        code, out, err = self.jobs("db", "verify")
        self.assertEqual(1, code, err)
        self.assertThat(out, Contains("missing:"))
        self.assertThat(out, Contains("job__status__id__idx"))
        self.assertEqual(1, len([line for line in out.splitlines()
                                 if "missing" in line]), out)

    def restore_index(self):
        transaction.abort()
        self.store.execute(
            "CREATE INDEX job__status__id__idx ON job (status, id)")
        transaction.commit()

    def test_list_and_filters(self):
        done, failed = self.factory.makeDoFooJob(), self.factory.makeDoFooJob(
            raise_="error")
        waiting = self.factory.makeDoFooJob()
        transaction.commit()
        self.run_all(done, failed)
        code, out, err = self.jobs("--format", "json", "list")
        self.assertEqual(0, code, err)
        self.assertEqual([waiting.job_id, failed.job_id, done.job_id],
                         [row["id"] for row in json.loads(out)])
        code, out, _ = self.jobs("--format", "json", "list", "--status",
                                 "failed,completed")
        self.assertEqual({"Failed", "Completed"},
                         {row["status"] for row in json.loads(out)})
        code, out, _ = self.jobs("list", "--status", "waiting")
        self.assertThat(out, Contains("Waiting"))
        self.assertEqual(2, len(out.splitlines()))
        from jobs.testing.foojob import DoBarJob
        bar = self.factory.makeDoFooJob(job_class=DoBarJob)
        transaction.commit()
        code, out, _ = self.jobs("--format", "json", "list", "--type", "do_bar")
        self.assertEqual([bar.job_id], [row["id"] for row in json.loads(out)])
        code, _, err = self.jobs("list", "--type", "nope")
        self.assertEqual(2, code)
        self.assertThat(err, Contains("Unknown job type 'nope'"))

    def test_bad_input_is_one_line_and_exit_2(self):
        for argv, message in [
                (("show", "abc"), "jobs: Bad job id 'abc': ids are whole numbers.\n"),
                (("show", "999"), "jobs: No job 999.\n"),
                (("list", "--status", "lost"), "jobs: Unknown status 'lost'"),
                (("list", "--since", "yesterday"), "jobs: Bad date 'yesterday'"),
                (("oops", "show", "OOPS-nope"), "jobs: No OOPS report OOPS-nope"),
                (("frobnicate",), "jobs: argument command: invalid choice"),
        ]:
            code, out, err = self.jobs(*argv)
            self.assertEqual(2, code, argv)
            self.assertTrue(err.startswith(message), (argv, err))
            self.assertEqual(1, len(err.splitlines()), err)

    def test_show_retry_and_oops(self):
        job = self.factory.makeDoFooJob(raise_="error")
        transaction.commit()
        self.run_all(job)
        [oops] = self.oopses()
        code, out, _ = self.jobs("--format", "json", "show", str(job.job_id))
        shown = json.loads(out)
        self.assertEqual(("Failed", [oops["id"]]),
                         (shown["status"], shown["oops_ids"]))
        code, out, err = self.jobs("retry", str(job.job_id))
        self.assertEqual((0, "Job %d is now Waiting.\n" % job.job_id),
                         (code, out))
        self.assertEqual((JobStatus.WAITING, 1),
                         (job.status, job.attempt_count))
        code, out, err = self.jobs("retry", str(job.job_id))
        self.assertEqual(2, code)
        self.assertThat(err, Contains("only Failed jobs can be retried"))
        code, out, _ = self.jobs("oops", "show", oops["id"])
        self.assertThat(out, Contains("ValueError"))

    def test_suspend_and_resume(self):
        job = self.factory.makeDoFooJob()
        transaction.commit()
        self.assertEqual(0, self.jobs("suspend", str(job.job_id))[0])
        self.assertEqual(JobStatus.SUSPENDED, job.status)
        self.assertEqual(0, self.jobs("resume", str(job.job_id))[0])
        self.assertEqual(JobStatus.WAITING, job.status)
        code, _, err = self.jobs("resume", str(job.job_id))
        self.assertThat(err, Contains("only Suspended jobs can be resumed"))

    def test_status(self):
        self.factory.makeDoFooJob()
        from jobs.testing.foojob import DoBarJob
        self.factory.makeDoFooJob(job_class=DoBarJob)
        transaction.commit()
        code, out, _ = self.jobs("--format", "json", "status")
        status = json.loads(out)
        types = {row["type"]: row["waiting"] for row in status["types"]}
        self.assertEqual((1, 1), (types["do_foo"], types["do_bar"]))
        self.assertEqual(2, {row["status"]: row["jobs"]
                             for row in status["statuses"]}["Waiting"])
        self.assertEqual(0, status["running_with_expired_lease"])

    def test_status_counts_rows_without_a_kind_by_their_source(self):
        # Rows made by hand or before job.kind: no kind to count by, so
        # each source's condition says whose they are.
        from jobs.testing.foojob import DoBarJob
        foo = self.factory.makeDoFooJob()
        self.factory.makeDoFooJob(job_class=DoBarJob)
        self.factory.makeDoFooJob(job_class=DoBarJob)
        transaction.commit()
        self.store.execute("UPDATE job SET kind = NULL WHERE id = ?",
                           (foo.job_id,))
        transaction.commit()
        code, out, _ = self.jobs("--format", "json", "status")
        status = json.loads(out)
        types = {row["type"]: row["waiting"] for row in status["types"]}
        self.assertEqual((1, 2), (types["do_foo"], types["do_bar"]))
        self.assertEqual(3, {row["status"]: row["jobs"]
                             for row in status["statuses"]}["Waiting"])

    def test_jobs_whose_context_row_went_are_orphans(self):
        # A waiting job that keeps its context, one that loses it, and a
        # finished one that loses it (finished: not an orphan).
        kept, orphan, done = [self.factory.makeDoFooJob() for _ in range(3)]
        transaction.commit()
        orphan_id = orphan.job_id
        self.run_all(done)
        transaction.commit()
        # Deleting a foo deletes its foo_job rows (ON DELETE CASCADE): the
        # job rows stay, seen by no source, so no runner ever takes them.
        for job in (orphan, done):
            self.store.execute("DELETE FROM foo WHERE id = ?",
                               (job.context.foo_id,))
        transaction.commit()
        code, out, _ = self.jobs("--format", "json", "status")
        self.assertEqual(1, json.loads(out)["orphaned"])
        code, out, _ = self.jobs("--format", "json", "list", "--orphaned")
        self.assertEqual([orphan_id], [row["id"] for row in json.loads(out)])
        code, out, _ = self.jobs("status")
        self.assertThat(out, Contains("\norphaned: 1\n"))
        # An operator cancels it by its id; it is finished, not orphaned.
        self.assertEqual(0, self.jobs("cancel", str(orphan_id))[0])
        code, out, _ = self.jobs("--format", "json", "status")
        self.assertEqual(0, json.loads(out)["orphaned"])
        code, out, err = self.jobs("prune", "--older-than", "2999-01-01",
                                   "--status", "cancelled")
        self.assertThat(out, Contains("Deleted 1 jobs"), err)

    def test_run_is_run_jobs(self):
        jobs = [self.factory.makeDoFooJob(), self.factory.makeDoFooJob(
            raise_="error")]
        transaction.commit()
        code, out, err = self.jobs("run", "--batch-size", "2", "do_foo")
        self.assertEqual(0, code, err)
        self.assertThat(err, Contains("Ran 1 DoFooJob jobs."))
        self.assertThat(err, Contains("1 DoFooJob jobs did not complete."))
        self.assertEqual([JobStatus.COMPLETED, JobStatus.FAILED],
                         [job.status for job in jobs])
        # The OOPS reporter (the section's) and the lock file are
        # run_jobs.py's.
        [oops] = self.oopses()
        self.assertEqual("T-do_foo", oops["reporter"])
        from jobs.scripts.lock import LockFile
        lock = LockFile(os.path.join(self.config.lock_dir,
                                     "jobs-run_jobs-do_foo.lock"),
                        DevNullLogger())
        self.assertTrue(lock.acquire())
        self.addCleanup(lock.release)
        code, out, err = self.jobs("--config", self.config_fixture.path,
                                   "run", "do_foo")
        self.assertEqual(1, code)
        self.assertThat(err, Contains("jobs-run_jobs-do_foo.lock in use"))

    def test_run_help_and_usage_are_run_jobs(self):
        code, out, err = self.jobs("run", "--help")
        self.assertEqual(0, code, err)
        self.assertThat(out, Contains(
            "usage: jobs run [options] SECTION [SECTION ...]\n"
            "       jobs run [options] --schedules [SECTION ...]"))
        for option in ("--worker", "--batch-size", "--processes",
                       "--max-jobs", "--celery-sweep", "--log-file",
                       "--schedules"):
            self.assertThat(out, Contains(option))
        self.assertThat(out, Contains("Exit status: 0 when every section"))
        code, out, err = self.jobs("run")
        self.assertEqual((2, ""), (code, out))
        self.assertThat(err, Contains(
            "jobs run: error: name at least one SECTION (or --schedules)"))
        code, out, err = self.jobs("run", "nosuchsection")
        self.assertEqual(2, code)
        self.assertThat(err, Contains("Unknown job section 'nosuchsection'"))

    def test_oops_summary_groups_by_failure(self):
        behaviours = ([{"raise_": "error"}] * 25
                      + [{"sql": "SELECT * FROM nope"}] * 15
                      + [{"raise_": "retry"}] * 10)
        jobs = [self.factory.makeDoFooJob(**b) for b in behaviours]
        transaction.commit()
        self.run_all(*jobs)
        code, out, _ = self.jobs("--format", "json", "oops", "summary")
        groups = json.loads(out)
        self.assertEqual([25, 15, 10], [g["count"] for g in groups])
        self.assertThat(groups[0]["fingerprint"],
                        Contains("ValueError at foojob.py"))
        code, out, _ = self.jobs("--format", "json", "oops", "list")
        self.assertEqual(50, len(json.loads(out)))
        code, out, _ = self.jobs("oops", "summary")
        self.assertEqual(4, len(out.splitlines()))  # a header, 3 groups


@on_each_database
class TestEverySubcommandInASubprocess(DatabaseTestCase):

    def jobs(self, *argv):
        import subprocess
        process = subprocess.run(
            [sys.executable, "-m", "jobs", *argv], capture_output=True,
            text=True, timeout=60)
        self.store.invalidate()
        return process.returncode, process.stdout, process.stderr

    def test_each_subcommand(self):
        failed = self.factory.makeDoFooJob(raise_="error")
        waiting = self.factory.makeDoFooJob()
        transaction.commit()
        JobRunner([failed], DevNullLogger()).runAll()
        [oops] = self.oopses()
        failed_id, waiting_id = str(failed.job_id), str(waiting.job_id)
        # On SQLite an open read would hold the write lock the commands need.
        transaction.abort()
        for argv, expected in [
                (("db", "upgrade"), "Applied: nothing"),
                (("db", "verify"), "up to date"),
                (("status",), "Failed"),
                (("list",), "Waiting"),
                (("show", failed_id), oops["id"]),
                (("oops", "list"), oops["id"]),
                (("oops", "show", oops["id"]), "ValueError"),
                (("oops", "summary"), "ValueError at foojob.py"),
                (("suspend", waiting_id), "Suspended"),
                (("resume", waiting_id), "Waiting"),
                (("retry", failed_id), "Waiting"),
                (("cancel", failed_id), "Cancelled"),
                (("prune", "--older-than", "0s"), "Deleted 1 jobs"),
                (("schedules",), "(none)"),
                (("workers",), "(none)"),
        ]:
            code, out, err = self.jobs(*argv)
            self.assertEqual(0, code, (argv, out, err))
            self.assertIn(expected, out, argv)
        code, out, err = self.jobs("--format", "json", "list")
        self.assertEqual([int(waiting_id)],
                         [row["id"] for row in json.loads(out)])
        self.assertEqual(JobStatus.WAITING, waiting.status)
        transaction.abort()
        code, out, err = self.jobs("run", "do_foo")
        self.assertEqual(0, code, err)
        self.assertIn("Ran 1 DoFooJob jobs.", err)
        self.assertEqual(JobStatus.COMPLETED, waiting.status)


class TestJobsCommandSubprocess(DatabaseTestCase):

    database_kind = "postgresql"
    __test__ = True

    def test_python_m_jobs(self):
        import subprocess
        self.factory.makeDoFooJob()
        transaction.commit()
        process = subprocess.run(
            [sys.executable, "-m", "jobs", "--format", "json", "list"],
            capture_output=True, text=True, timeout=60)
        self.assertEqual(0, process.returncode, process.stderr)
        self.assertEqual(["Waiting"],
                         [row["status"] for row in json.loads(process.stdout)])
        process = subprocess.run([sys.executable, "-m", "jobs", "show", "x"],
                                 capture_output=True, text=True, timeout=60)
        self.assertEqual(2, process.returncode)
        self.assertNotIn("Traceback", process.stderr)


@on_each_database
class TestCancelAndPrune(DatabaseTestCase):

    jobs = TestJobsCommand.jobs
    run_all = TestJobsCommand.run_all

    def test_cancel_waiting_job_never_runs(self):
        job = self.factory.makeDoFooJob(record=True)
        transaction.commit()
        code, out, err = self.jobs("cancel", str(job.job_id))
        self.assertEqual((0, "Job %d is now Cancelled.\n" % job.job_id),
                         (code, out), err)
        from jobs.testing.foojob import DoFooJob
        self.assertEqual([], list(DoFooJob.iterReady()))
        self.assertEqual([], list(DoFooJob.claimReady(10)))
        self.assertEqual(0, self.store.execute(
            "SELECT count(*) FROM job_execution").get_one()[0])

    def test_cancel_finished_job_is_refused(self):
        job = self.factory.makeDoFooJob()
        transaction.commit()
        self.run_all(job)
        code, out, err = self.jobs("cancel", str(job.job_id))
        self.assertEqual(2, code)
        self.assertEqual("jobs: Job %d is Completed: it cannot be cancelled.\n"
                         % job.job_id, err)

    def test_prune_deletes_old_finished_jobs_in_batches(self):
        from jobs.testing.factory import make_many_foo_jobs
        foo = self.factory.makeFoo()
        old = make_many_foo_jobs(self.store, foo, 100000, status=2)
        self.store.execute("UPDATE job SET date_finished = ?",
                           ("2020-01-01 00:00:00",))
        waiting = self.factory.makeDoFooJob()
        running = self.factory.makeDoFooJob()
        running.acquireLease()
        running.start()
        transaction.commit()
        code, out, _ = self.jobs("prune", "--older-than", "30d", "--dry-run")
        self.assertThat(out, Contains("Would delete 100000 jobs"))
        code, out, err = self.jobs("prune", "--older-than", "30d",
                                   "--batch-size", "1000")
        self.assertEqual(0, code, err)
        self.assertThat(out, Contains("Deleted 100000 jobs"))
        remaining = sorted(row[0] for row in self.store.execute(
            "SELECT id FROM job"))
        self.assertEqual(sorted([waiting.job_id, running.job_id]), remaining)
        # The context rows went with their jobs.
        self.assertEqual(2, self.store.execute(
            "SELECT count(*) FROM foo_job").get_one()[0])
        self.assertEqual(100000, len(old))
        code, _, err = self.jobs("prune", "--older-than", "1d", "--status",
                                 "waiting")
        self.assertEqual(2, code)
        self.assertThat(err, Contains("Only finished jobs can be pruned"))


class TestCancelRunning(DatabaseTestCase):
    """PostgreSQL: on SQLite a running job holds the write lock, so a
    cancel request waits for the job instead."""

    database_kind = "postgresql"
    __test__ = True
    config_extra = """
[do_foo_isolated]
source_interface: jobs.testing.foojob.IDoFooJobSource
runner_class: ProcessJobRunner
processes: 1
grace_period: 0
# The heartbeat (every lease / 3 s) reads cancel requests.
lease_seconds: 3

# The same with time to die of the cancel's signal before being killed.
[do_foo_isolated_patient]
source_interface: jobs.testing.foojob.IDoFooJobSource
runner_class: ProcessJobRunner
processes: 1
grace_period: 60
lease_seconds: 3
"""

    jobs = TestJobsCommand.jobs

    def test_process_runner_stops_a_cancelled_job(self):
        job = self.factory.makeDoFooJob(sleep=600)
        stderr = self.cancel_while_running(job)
        self.assertThat(stderr, Contains("Cancelled DoFooJob (ID %d)."
                                         % job.job_id))

    def test_a_child_killed_by_the_cancel_signal_is_cancelled(self):
        # A child dies of SIGUSR1 while it is still setting up (or when
        # its job reset the signal): the cancel is still the outcome.
        import fixtures
        reset = os.path.join(self.useFixture(fixtures.TempDir()).path,
                             "reset")
        job = self.factory.makeDoFooJob(misbehave="usr1_default",
                                        then_touch=reset)
        # A grace long enough that only the child's death ends the run
        # in time (with none, the parent may kill it first).
        stderr = self.cancel_while_running(
            job, lambda: os.path.exists(reset), "do_foo_isolated_patient")
        self.assertThat(stderr, Contains(
            "Job %d was cancelled while running; its process was killed by"
            " signal SIGUSR1." % job.job_id))

    def cancel_while_running(self, job, started=lambda: True,
                             section="do_foo_isolated"):
        """Run `job` in a --processes run, cancel it once RUNNING and
        `started()`; check it ends CANCELLED without an OOPS; return the
        run's stderr."""
        import subprocess
        import time
        from jobs.testing.script import ROOT
        transaction.commit()
        runner = subprocess.Popen(
            [sys.executable, ROOT + "/cronscripts/run_jobs.py", section],
            stderr=subprocess.PIPE, text=True)
        self.addCleanup(runner.kill)
        deadline = time.monotonic() + 60
        while True:
            self.store.invalidate()
            if job.status is JobStatus.RUNNING and started():
                break
            transaction.abort()
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.05)
        transaction.abort()
        code, out, err = self.jobs("cancel", str(job.job_id))
        self.assertEqual(0, code, err)
        self.assertThat(out, Contains("cancel requested"))
        _, stderr = runner.communicate(timeout=60)
        self.assertEqual(0, runner.returncode, stderr)
        self.store.invalidate()
        self.assertEqual(JobStatus.CANCELLED, job.status)
        self.assertEqual([], self.oopses())
        return stderr


@on_each_database
class TestStatusSharedSource(DatabaseTestCase):
    """Two sections over one source: each counts the source's jobs."""

    config_extra = """
[do_foo_again]
source_interface: jobs.testing.foojob.IDoFooJobSource
"""

    jobs = TestJobsCommand.jobs

    def test_status_counts_a_kind_under_each_section_that_sees_it(self):
        self.factory.makeDoFooJob()
        transaction.commit()
        code, out, _ = self.jobs("--format", "json", "status")
        types = {row["type"]: row["waiting"]
                 for row in json.loads(out)["types"]}
        self.assertEqual((1, 1, 0), (types["do_foo"], types["do_foo_again"],
                                     types["do_bar"]))
