"""Metrics: the runner's tallies and the database's counts, as
Prometheus text that prometheus_client's parser reads, right after runs
of known outcomes — on both databases; and a worker's --metrics-port."""

import os
import signal
import subprocess
import sys
import time
import urllib.request

import fixtures
import transaction
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from jobs import counts, kinds
from jobs.config import get_config
from jobs.database import get_store
from jobs.interfaces.job import JobStatus
from jobs.log import DevNullLogger
from jobs.metrics import tally
from jobs.metrics.collector import registry
from jobs.model import workers
from jobs.runner import JobRunner
from jobs.sections import find_section
from jobs.testing.foojob import DoBarJob
from jobs.testing.script import ROOT
from jobs.testing.testcase import DatabaseTestCase, on_each_database


def scrape(database=True):
    """{(name, labels as a sorted tuple): value} of one scrape."""
    text = generate_latest(registry(
        (lambda: (get_store(), get_config())) if database else None))
    samples = {}
    for family in text_string_to_metric_families(text.decode("utf-8")):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = (
                sample.value)
    return samples


@on_each_database
class TestMetrics(DatabaseTestCase):

    def setUp(self):
        super().setUp()
        tally.forget()
        counts.forget()
        kinds.forget()
        self.addCleanup(tally.forget)
        self.addCleanup(counts.forget)

    def run_section(self, name="do_foo"):
        section = find_section(self.config, name)
        return JobRunner.runFromSource(section.source, DevNullLogger(),
                                       settings=section.settings)

    def test_counts_are_right_after_known_outcomes(self):
        for behaviour in ({}, {}, {"raise_": "error"}, {"raise_": "user"}):
            self.factory.makeDoFooJob(**behaviour)
        self.factory.makeDoFooJob(raise_="retry").job.max_retries = 3
        self.factory.makeDoFooJob(job_class=DoBarJob)
        transaction.commit()
        self.run_section("do_foo")
        got = scrape()
        runs = {labels: value for (name, labels), value in got.items()
                if name == "jobs_runs_total"}
        foo = (("section", "do_foo"), ("type", "DoFooJob"))
        self.assertEqual(
            {tuple(sorted(foo + (("outcome", outcome),))): count
             for outcome, count in (("complete", 2), ("fail", 1),
                                    ("user-error", 1), ("retry", 1))},
            runs)
        self.assertEqual(2, got[("jobs_failures_total", foo)])
        self.assertEqual(1, got[("jobs_retries_total", foo)])
        self.assertEqual(5, got[("jobs_run_duration_seconds_count", foo)])
        self.assertEqual(5, got[("jobs_run_duration_seconds_bucket",
                                 tuple(sorted(foo + (("le", "+Inf"),))))])
        self.assertGreaterEqual(got[(
            "jobs_claim_duration_seconds_count", (("section", "do_foo"),))],
            1)
        # The database's side, checked against the table itself.
        expected = dict(self.store.execute(
            "SELECT status, count(*) FROM job GROUP BY status"))
        by_status = {}
        for (name, labels), value in got.items():
            if name == "jobs_jobs":
                labels = dict(labels)
                status = JobStatus.items[labels["status"].upper()].value
                by_status[status] = by_status.get(status, 0) + value
                self.assertIn(labels["section"], ("do_foo", "do_bar"))
        self.assertEqual(expected, by_status)
        self.assertEqual(1, got[("jobs_jobs", (("section", "do_bar"),
                                               ("status", "waiting")))])
        self.assertEqual(2, got[("jobs_jobs", (("section", "do_foo"),
                                               ("status", "completed")))])
        # The DoBarJob is ready, the retried one is not due yet.
        self.assertEqual(1, got[("jobs_ready", ())])
        self.assertGreaterEqual(got[("jobs_oldest_ready_age_seconds", ())],
                                0)

    def test_counts_are_cached_a_few_seconds(self):
        self.factory.makeDoFooJob()
        transaction.commit()
        first = counts.snapshot(self.store, self.config)
        self.factory.makeDoFooJob()
        transaction.commit()
        self.assertIs(first, counts.snapshot(self.store, self.config))
        fresh = counts.snapshot(self.store, self.config, max_age=0)
        self.assertEqual(2, fresh.totals()[JobStatus.WAITING])

    def test_a_process_without_database_serves_its_tallies(self):
        self.factory.makeDoFooJob()
        transaction.commit()
        self.run_section()
        got = scrape(database=False)
        self.assertNotIn(("jobs_ready", ()), got)
        self.assertEqual(1, got[("jobs_runs_total", (
            ("outcome", "complete"), ("section", "do_foo"),
            ("type", "DoFooJob")))])

    def test_workers_are_counted_live_or_lost_from_the_worker_table(self):
        got = scrape()
        self.assertEqual((0, 0), (
            got[("jobs_workers", (("state", "live"),))],
            got[("jobs_workers", (("state", "lost"),))]))
        # Three runners beating every 10 s; lost after 3 missed beats.
        ids = [workers.register(self.store, "h", pid, "worker", ["do_foo"],
                                10, 3600) for pid in (1, 2, 3)]
        self.store.execute("UPDATE worker SET last_beat = ? WHERE id = ?",
                           (_db_time(-15), ids[1]))
        self.store.execute("UPDATE worker SET last_beat = ? WHERE id = ?",
                           (_db_time(-60), ids[2]))
        transaction.commit()
        counts.forget()
        got = scrape()
        self.assertEqual((2, 1), (
            got[("jobs_workers", (("state", "live"),))],
            got[("jobs_workers", (("state", "lost"),))]))


def _db_time(offset):
    from datetime import datetime, timedelta, timezone
    return (datetime.now(timezone.utc) + timedelta(seconds=offset)).replace(
        tzinfo=None).isoformat(" ")


class TestEstimates(DatabaseTestCase):
    """Past the exact limit, a (kind, status) count is the planner's."""

    database_kind = "postgresql"
    __test__ = True

    def test_large_counts_are_estimated(self):
        self.useFixture(fixtures.MonkeyPatch("jobs.counts.EXACT_LIMIT", 5))
        self.factory.makeManyDoFooJobs(200)
        transaction.commit()
        self.store.execute("ANALYZE job")
        transaction.commit()
        snap = counts.take(self.store, self.config)
        [(pair, count)] = snap.by_kind.items()
        self.assertEqual({pair}, snap.estimated)
        self.assertEqual(JobStatus.WAITING, pair[1])
        # The planner's statistics of 200 rows are exact enough.
        self.assertTrue(150 <= count <= 250, count)
        self.assertEqual(6, snap.ready)  # capped: "more than 5"


class TestWorkerMetricsPort(DatabaseTestCase):
    """A real worker process serves its own /metrics."""

    database_kind = "postgresql"
    __test__ = True

    def test_worker_serves_its_tallies(self):
        import socket
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        for _ in range(3):
            self.factory.makeDoFooJob()
        transaction.commit()
        process = subprocess.Popen(
            [sys.executable, os.path.join(ROOT, "cronscripts", "run_jobs.py"),
             "--worker", "--metrics-port", str(port), "do_foo"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL)
        self.addCleanup(self.stop, process)
        deadline = time.monotonic() + 60
        value = None
        while time.monotonic() < deadline:
            try:
                text = urllib.request.urlopen(
                    "http://127.0.0.1:%d/metrics" % port, timeout=5).read()
            except OSError:
                time.sleep(0.2)
                continue
            for family in text_string_to_metric_families(text.decode()):
                for sample in family.samples:
                    if sample.name == "jobs_runs_total":
                        value = sample.value
            if value == 3:
                break
            time.sleep(0.2)
        self.assertEqual(3, value)

    def stop(self, process):
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        process.stderr.close()
