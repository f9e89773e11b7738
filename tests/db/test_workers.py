"""Live runners in the ``worker`` table, on both databases, with the
frozen database clock: a runner's row and its beats (`jobs.presence`),
what it holds, when it counts as lost, ``jobs workers`` and ``jobs cancel
--worker``. Real processes (kill -9, SIGTERM-like stops) are in
tests/reliability/test_workers.py."""

import io
import json
import os
import socket
from datetime import timedelta

import fixtures
import transaction
from testtools.matchers import Contains

from jobs.attempt import Attempt
from jobs.cli import main
from jobs.database import get_store
from jobs.heartbeat import Heartbeat, SideConnection, held_attempts
from jobs.log import BufferLogger
from jobs.interfaces.job import JobStatus
from jobs.model import claims, workers
from jobs.presence import Presence
from jobs.runner import JobCronScript
from jobs.testing.fixtures import FrozenClockFixture
from jobs.testing.testcase import DatabaseTestCase, on_each_database

# The beat threads beat when a test asks them (`Presence.beat_now`).
BEAT = 3600.0
WORKERS = "[workers]\nbeat_seconds: %s\nlost_after_beats: 3\n" \
    "keep_lost_seconds: 86400\n\n" % BEAT


class Stopped:
    """An ``on_stop`` that counts its calls."""

    def __init__(self):
        self.calls = 0

    def __call__(self):
        self.calls += 1


@on_each_database
class TestPresence(DatabaseTestCase):

    config_extra = WORKERS

    def setUp(self):
        super().setUp()
        self.clock = self.useFixture(FrozenClockFixture()).clock
        self.logger = BufferLogger()
        self.stopped = Stopped()

    def presence(self, kind="worker", sections=("do_foo",)):
        """A started `Presence`, stopped at the end of the test."""
        presence = Presence(kind, sections, self.config.workers,
                            self.logger, self.stopped)
        presence.start()
        self.addCleanup(presence.stop)
        return presence

    def jobs(self, *argv):
        out, err = io.StringIO(), io.StringIO()
        self.useFixture(fixtures.MonkeyPatch("sys.stdout", out))
        self.useFixture(fixtures.MonkeyPatch("sys.stderr", err))
        transaction.abort()
        code = main(list(argv))
        self.store.invalidate()
        return code, out.getvalue(), err.getvalue()

    def listed(self, *options):
        code, out, err = self.jobs("--format", "json", "workers", *options)
        self.assertEqual(0, code, err)
        return json.loads(out)

    def test_a_runner_registers_and_its_row_goes_when_it_stops(self):
        presence = self.presence(sections=("do_foo", "do_bar"))
        [row] = self.listed()
        self.assertEqual(
            {"id": presence.worker_id, "state": "live", "kind": "worker",
             "host": socket.gethostname(), "pid": os.getpid(),
             "sections": "do_foo do_bar",
             "started": self.clock.now().strftime("%Y-%m-%d %H:%M:%S"),
             "last_beat": "0 s ago", "jobs": []}, row)
        presence.stop()
        self.assertEqual([], self.listed())

    def test_it_is_lost_after_the_configured_beats(self):
        self.presence()
        self.clock.advance(timedelta(seconds=3 * BEAT))
        self.assertEqual(["live"], [r["state"] for r in self.listed()])
        self.clock.advance(timedelta(seconds=1))
        [row] = self.listed()
        self.assertEqual(("lost", "10801 s ago"), (row["state"],
                                                   row["last_beat"]))
        self.assertEqual([row], self.listed("--lost"))
        self.assertEqual([], self.listed("--live"))

    def test_a_beat_keeps_it_live_even_idle(self):
        presence = self.presence()
        self.clock.advance(timedelta(seconds=3 * BEAT + 1))
        presence.beat_now()
        [row] = self.listed()
        self.assertEqual(("live", "0 s ago", []),
                         (row["state"], row["last_beat"], row["jobs"]))

    def test_a_beat_writes_the_jobs_its_heartbeats_hold(self):
        presence = self.presence()
        jobs = [self.factory.makeDoFooJob() for _ in range(2)]
        transaction.commit()
        first, second = [job.job_id for job in jobs]
        attempts = [Attempt(first, 1), Attempt(second, 1)]
        transaction.abort()  # SQLite: a beat needs the write lock
        heartbeat = Heartbeat(SideConnection.of(get_store()), 60)
        self.addCleanup(heartbeat.stop)
        heartbeat.watch(attempts)
        self.assertEqual([(first, 1), (second, 1)], held_attempts())
        attempts[0].recorded = True  # its outcome is in
        presence.beat_now()
        [row] = self.listed()
        # Job 2's row says WAITING: this beat's attempt is not its own.
        self.assertEqual([{"job": second, "attempt": 1, "now": "waiting"}],
                         row["jobs"])
        heartbeat.stop()
        presence.beat_now()
        self.assertEqual([], self.listed()[0]["jobs"])

    def test_the_jobs_its_claims_name_are_listed_without_a_beat(self):
        # The in-process runner on SQLite has no lease heartbeat: what it
        # holds is what its claims say (job.claimed_by).
        presence = self.presence()
        mine, other = [self.factory.makeDoFooJob() for _ in range(2)]
        transaction.commit()
        mine_id, other_id = mine.job_id, other.job_id
        for job_id, holder in ((mine_id, claims.claimer(self.store)),
                               (other_id, "elsewhere:1/")):
            self.store.execute(
                "UPDATE job SET status = ?, attempt_count = 1, claimed_by = ?"
                " WHERE id = ?", (JobStatus.RUNNING.value, holder, job_id))
        transaction.commit()
        [row] = self.listed()
        self.assertEqual(presence.worker_id, row["id"])
        self.assertEqual([{"job": mine_id, "attempt": 1, "now": "running"}],
                         row["jobs"])
        # Held by a beat too: listed once.
        self.useFixture(fixtures.MonkeyPatch(
            "jobs.presence.held_attempts", lambda: [(mine_id, 1)]))
        presence.beat_now()
        self.assertEqual([mine_id], [one["job"] for one in
                                     self.listed()[0]["jobs"]])

    def test_a_lost_runners_jobs_show_what_became_of_them(self):
        presence = self.presence()
        running, finished, pruned = [self.factory.makeDoFooJob()
                                     for _ in range(3)]
        transaction.commit()
        for job in (running, finished, pruned):
            job.job.acquireLease()
            job.job.start(manage_transaction=True)
        ids = running_id, finished_id, pruned_id = [
            job.job_id for job in (running, finished, pruned)]
        held = [(job_id, 1) for job_id in ids]
        self.useFixture(fixtures.MonkeyPatch(
            "jobs.presence.held_attempts", lambda: held))
        transaction.abort()
        presence.beat_now()
        # The runner dies; its jobs' leases expire; others take them.
        self.clock.advance(timedelta(seconds=3 * BEAT + 60))
        self.store.execute(
            "UPDATE job SET attempt_count = 2 WHERE id = ?", (running_id,))
        finished.job.complete(manage_transaction=True)
        self.store.execute("DELETE FROM job WHERE id = ?", (pruned_id,))
        transaction.commit()
        [row] = self.listed()
        self.assertEqual("lost", row["state"])
        self.assertEqual(
            [{"job": running_id, "attempt": 1,
              "now": "taken over by attempt 2 (running)"},
             {"job": finished_id, "attempt": 1, "now": "completed"},
             {"job": pruned_id, "attempt": 1, "now": "pruned"}],
            row["jobs"])
        code, out, err = self.jobs("workers")
        self.assertThat(out, Contains(
            "%d#1 taken over by attempt 2 (running), %d#1 completed, %d#1"
            " pruned" % tuple(ids)))

    def test_cancel_worker_asks_it_to_stop_at_its_next_beat(self):
        presence = self.presence()
        code, out, err = self.jobs("cancel", "--worker",
                                   str(presence.worker_id))
        self.assertEqual((0, "Worker %d: stop requested; it stops at its"
                          " next beat.\n" % presence.worker_id, ""),
                         (code, out, err))
        self.assertEqual(["stopping"], [r["state"] for r in self.listed()])
        self.assertEqual((False, 0), (presence.stop_requested,
                                      self.stopped.calls))
        presence.beat_now()
        presence.beat_now()
        self.assertEqual((True, 1), (presence.stop_requested,
                                     self.stopped.calls))
        self.assertThat(self.logger.getLogBuffer(), Contains(
            "INFO    Worker %d: stop requested (jobs cancel --worker):"
            " stopping as after SIGTERM." % presence.worker_id))

    def test_cancel_worker_refuses_what_cannot_stop(self):
        presence = self.presence()
        self.clock.advance(timedelta(seconds=3 * BEAT + 1))
        for argv, message in (
                (("x",), "jobs: Bad worker id 'x': ids are whole numbers.\n"),
                (("999",), "jobs: No worker 999 (jobs workers lists them).\n"),
                ((str(presence.worker_id),),
                 "jobs: Worker %d is lost (its last beat was 10801 s ago): it"
                 " cannot stop; other runners take its jobs over when their"
                 " leases expire.\n" % presence.worker_id)):
            self.assertEqual((2, "", message),
                             self.jobs("cancel", "--worker", *argv))
        self.assertEqual(
            (2, "", "jobs: Which jobs? Give job ids, or a filter: --type,"
                    " --status, --since, --until, --fingerprint (or --worker"
                    " ID).\n"),
            self.jobs("cancel"))

    def test_a_lost_runners_row_is_deleted_once_kept_long_enough(self):
        old = self.presence()
        old_id = old.worker_id
        self.clock.advance(timedelta(seconds=86399))
        second = self.presence()
        self.assertEqual([old_id, second.worker_id],
                         [r["id"] for r in self.listed()])
        self.clock.advance(timedelta(seconds=2))
        third = self.presence()
        self.assertEqual([second.worker_id, third.worker_id],
                         [r["id"] for r in self.listed()])
        # The old runner, frozen all this while, wakes: a row of its own.
        old.beat_now()
        self.assertNotEqual(old_id, old.worker_id)
        self.assertThat(self.logger.getLogBuffer(), Contains(
            "Worker %d: its row was deleted as a lost runner's; registered"
            " again as worker %d." % (old_id, old.worker_id)))
        self.assertEqual(3, len(self.listed()))

    def test_the_statements_plain_values(self):
        worker_id = workers.register(self.store, "h", 1, "cron", ["a"], 5, 60)
        self.assertEqual(False, workers.beat(self.store, worker_id,
                                             [(3, 1)]))
        self.assertTrue(workers.request_stop(self.store, worker_id))
        self.assertEqual(True, workers.beat(self.store, worker_id, []))
        workers.deregister(self.store, worker_id)
        self.assertIsNone(workers.beat(self.store, worker_id, []))
        self.assertFalse(workers.request_stop(self.store, worker_id))
        transaction.abort()


@on_each_database
class TestCronRunRegisters(DatabaseTestCase):
    """A cron run has a row while it runs, deleted when it ends."""

    config_extra = WORKERS

    def test_a_cron_run_is_listed_while_it_runs(self):
        seen = []
        real_run_all = JobCronScript.run_all

        def run_all(script, config):
            transaction.abort()
            rows = get_store().execute(
                "SELECT kind, sections, pid FROM worker").get_all()
            transaction.abort()
            seen.extend(rows)
            return real_run_all(script, config)

        self.useFixture(fixtures.MonkeyPatch(
            "jobs.cronscript.JobCronScript.run_all", run_all))
        job = self.factory.makeDoFooJob()
        transaction.commit()
        script = JobCronScript(test_args=["do_foo", "do_bar"],
                               commandline_config=True)
        script.logger = BufferLogger()
        self.assertEqual(0, script.lock_and_run(),
                         script.logger.getLogBuffer())
        self.assertEqual([("cron", "do_foo do_bar", os.getpid())], seen)
        self.assertEqual([], get_store().execute(
            "SELECT id FROM worker").get_all())
        self.store.invalidate()
        self.assertEqual("Completed", job.status.title)
