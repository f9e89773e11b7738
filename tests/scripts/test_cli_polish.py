"""The jobs command as an operator meets it: bulk retry and cancel by
filter and fingerprint, `jobs explain`, progress bars on a terminal only,
a broken pipe, and the process runner's pool line once per worker."""

import json
import os
import fcntl
import pty
import signal
import struct
import subprocess
import sys
import termios
import time

import fixtures
import transaction
from testtools.matchers import Contains

from jobs.errorlog import fingerprint
from jobs.interfaces.job import JobStatus
from jobs.log import DevNullLogger
from jobs.model import workers
from jobs.runner import JobRunner
from jobs.sections import error_reporter_for
from jobs.testing.foojob import DoBarJob
from jobs.testing.script import ROOT, jobs_command
from jobs.testing.testcase import DatabaseTestCase, on_each_database


class CommandMixin:

    def jobs(self, *argv):
        return jobs_command(self.store, *argv)

    def run_jobs(self, *jobs):
        JobRunner(list(jobs), DevNullLogger(),
                  error_reporter=error_reporter_for("do_foo")).runAll()


@on_each_database
class TestBulkActions(CommandMixin, DatabaseTestCase):

    def test_retry_by_fingerprint_and_type(self):
        failed = [self.factory.makeDoFooJob(raise_="error") for _ in range(3)]
        other = self.factory.makeDoFooJob(raise_="unprintable")
        bar = self.factory.makeDoFooJob(job_class=DoBarJob, raise_="error")
        transaction.commit()
        self.run_jobs(*failed + [other])
        JobRunner([bar], DevNullLogger(),
                  error_reporter=error_reporter_for("do_bar")).runAll()
        reports = [r for r in self.oopses() if r["type"] == "ValueError"]
        code, out, err = self.jobs("retry", "--dry-run", "--fingerprint",
                                   fingerprint(reports[0]))
        self.assertEqual((0, "Would retry 4 jobs.\n"), (code, out), err)
        code, out, err = self.jobs("retry", "--fingerprint",
                                   fingerprint(reports[0]), "--type", "do_foo")
        self.assertEqual((0, "3 jobs retried.\n", ""), (code, out, err))
        self.assertEqual(
            [JobStatus.WAITING] * 3 + [JobStatus.FAILED, JobStatus.FAILED],
            [job.job.status for job in failed + [other, bar]])

    def test_cancel_by_filter_asks_running_jobs_to_stop(self):
        waiting = [self.factory.makeDoFooJob() for _ in range(2)]
        running = self.factory.makeDoFooJob()
        done = self.factory.makeDoFooJob()
        transaction.commit()
        self.run_jobs(done)
        self.store.execute("UPDATE job SET status = 1, lease_expires = ?"
                           " WHERE id = ?", ("2999-01-01 00:00:00",
                                             running.job_id))
        transaction.commit()
        code, out, err = self.jobs("cancel", "--type", "do_foo")
        self.assertEqual(0, code, err)
        self.assertEqual("2 jobs cancelled. 1 running jobs: cancel requested"
                         " (their runners stop them).\n", out)
        self.store.invalidate()
        self.assertEqual([JobStatus.CANCELLED] * 2 + [JobStatus.RUNNING,
                                                      JobStatus.COMPLETED],
                         [job.job.status for job in waiting + [running, done]])
        self.assertTrue(running.job.cancel_requested)

    def test_ids_or_a_filter(self):
        code, _, err = self.jobs("retry")
        self.assertEqual(2, code)
        self.assertThat(err, Contains("Which jobs? Give job ids, or a filter"))
        code, _, err = self.jobs("retry", "1", "--type", "do_foo")
        self.assertThat(err, Contains("Give job ids or a filter, not both."))
        code, _, err = self.jobs("cancel", "--type", "nope")
        self.assertThat(err, Contains("Unknown job type 'nope'"))

    def test_explain(self):
        later = self.factory.makeDoFooJob(delay=3600).job_id
        ready = self.factory.makeDoFooJob().job_id
        failed = self.factory.makeDoFooJob(raise_="error")
        orphan = self.factory.makeDoFooJob().job_id
        lost = self.factory.makeDoFooJob().job_id
        transaction.commit()
        self.run_jobs(failed)
        failed = failed.job_id
        self.store.execute("DELETE FROM foo_job WHERE job = ?", (orphan,))
        self.store.execute("UPDATE job SET status = 1, lease_expires = ?"
                           " WHERE id = ?", ("2000-01-01 00:00:00", lost))
        transaction.commit()

        def reasons(job_id):
            code, out, err = self.jobs("--format", "json", "explain",
                                       str(job_id))
            self.assertEqual(0, code, err)
            return [found["reason"] for found in json.loads(out)]

        self.assertEqual(["scheduled"], reasons(later))
        self.assertEqual(["ready"], reasons(ready))
        self.assertEqual(["finished"], reasons(failed))
        self.assertEqual(["orphaned"], reasons(orphan))
        self.assertEqual(["lease-expired"], reasons(lost))
        code, out, _ = self.jobs("explain", str(later))
        self.assertThat(out, Contains("is scheduled later: at "))
        # A running job, held by a worker the worker table names.
        self.store.execute("UPDATE job SET lease_expires = ? WHERE id = ?",
                           ("2999-01-01 00:00:00", lost))
        worker = workers.register(self.store, "alpha", 4242, "worker",
                                  ["do_foo"], 30, 3600)
        workers.beat(self.store, worker, [(lost + 1000, 1), (lost, 3)])
        transaction.commit()
        code, out, _ = self.jobs("explain", str(lost))
        self.assertThat(out, Contains("is running (attempt 0), its lease"
                                      " held until 2999-01-01 00:00:00+00:00,"
                                      " by the worker 4242 on host alpha."))
        self.assertEqual(2, self.jobs("explain", "424242")[0])


class TestExplainPostgreSQL(CommandMixin, DatabaseTestCase):
    """What only PostgreSQL has: roles; and the section's lock."""

    database_kind = "postgresql"
    __test__ = True
    config_extra = ("[do_lonely]\ndbuser: no_such_role_17\n"
                    "source_interface: jobs.testing.foojob.IDoFooJobSource\n")

    def test_a_missing_role_and_a_held_lock(self):
        from jobs.scripts.lock import LockFile
        job = self.factory.makeDoFooJob()
        transaction.commit()
        # do_foo and do_lonely both see DoFooJobs: the first section
        # that matches is the job's (do_foo, role dofoo, which exists).
        lock = LockFile(os.path.join(self.config.lock_dir,
                                     "jobs-run_jobs-do_foo.lock"),
                        DevNullLogger())
        self.assertTrue(lock.acquire())
        self.addCleanup(lock.release)
        code, out, _ = self.jobs("explain", str(job.job_id))
        self.assertThat(out, Contains("A cron run of section do_foo holds"
                                      " its lock"))
        from jobs import explain
        self.useFixture(fixtures.MonkeyPatch(
            "jobs.explain.sections_of_kinds",
            lambda store, config: {job.job.kind: "do_lonely"}))
        reasons = explain.explain(self.store, self.config, job.job)
        self.assertIn(("privilege", "Section do_lonely runs as role"
                       " no_such_role_17, which does not exist (jobs db roles"
                       " makes it)."), reasons)


class TestTerminal(DatabaseTestCase):
    """Real `jobs` processes: a terminal, a pipe."""

    database_kind = "postgresql"
    __test__ = True

    def test_progress_bar_on_a_terminal_only(self):
        self.factory.makeManyDoFooJobs(30, status=2)
        self.store.execute("UPDATE job SET date_finished = '2000-01-01'")
        transaction.commit()
        argv = [sys.executable, "-m", "jobs", "prune", "--older-than", "1d",
                "--batch-size", "10"]
        # stderr on a terminal: a bar.
        leader, follower = pty.openpty()
        # A terminal of 80 columns (a new pty has none: no room for a bar).
        fcntl.ioctl(follower, termios.TIOCSWINSZ,
                    struct.pack("HHHH", 24, 80, 0, 0))
        process = subprocess.Popen(argv, stdout=subprocess.PIPE,
                                   stderr=follower, stdin=subprocess.DEVNULL)
        os.close(follower)
        seen = b""
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
        out, _ = process.communicate(timeout=60)
        os.close(leader)
        self.assertEqual(0, process.returncode)
        self.assertIn(b"Pruned", seen)
        self.assertIn(b"/30 [", seen)
        self.assertIn(b"Deleted 30 jobs", out)
        # Piped: nothing but the result.
        self.factory.makeManyDoFooJobs(5, status=2)
        self.store.execute("UPDATE job SET date_finished = '2000-01-01'")
        transaction.commit()
        result = subprocess.run(argv, capture_output=True, text=True,
                                stdin=subprocess.DEVNULL, timeout=60)
        self.assertEqual(("", 0), (result.stderr, result.returncode))

    def test_a_broken_pipe_exits_quietly(self):
        self.factory.makeManyDoFooJobs(2000)
        transaction.commit()
        process = subprocess.Popen(
            [sys.executable, "-m", "jobs", "list", "--limit", "2000"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL)
        process.stdout.readline()
        process.stdout.close()  # `| head -1`
        err = process.stderr.read()
        process.wait(60)
        process.stderr.close()
        self.assertEqual(b"", err)
        self.assertEqual(141, process.returncode)

    def test_the_pool_line_is_logged_once_per_worker(self):
        for _ in range(2):
            self.factory.makeDoFooJob()
        transaction.commit()
        extra = os.path.join(self.useFixture(fixtures.TempDir()).path,
                             "fast.conf")
        with open(extra, "w") as f:
            f.write("[meta]\nextends: %s\n\n[do_foo]\npoll_interval: 0.1\n"
                    % self.config_fixture.path)
        process = subprocess.Popen(
            [sys.executable, os.path.join(ROOT, "cronscripts",
                                          "run_jobs.py"),
             "--worker", "--processes", "2", "do_foo"],
            env=dict(os.environ, JOBS_CONFIG=extra), stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        # Many polls: jobs run, then the queue stays empty.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            done = self.store.execute(
                "SELECT count(*) FROM job WHERE status = 2").get_one()[0]
            transaction.abort()
            if done == 2:
                break
            time.sleep(0.1)
        time.sleep(1.5)  # a dozen polls more
        process.send_signal(signal.SIGTERM)
        out, _ = process.communicate(timeout=60)
        self.assertEqual(1, out.count("Running through 2 child processes."),
                         out)
