"""Concurrency and rate limits kept by the claim statement (issue 16,
item 4), on both databases, with the frozen clock. (Many runners at once:
tests/reliability/test_limits.py.)"""

import os
from datetime import timedelta

import fixtures
import transaction
from testtools import TestCase

from jobs.config import get_config, load
from jobs.database import get_store
from jobs.errors import ConfigError, InvalidJobOption
from jobs.interfaces.job import JobStatus
from jobs.log import BufferLogger
from jobs.model import records
from jobs.model.job import Job
from jobs.model.limits import Limits
from jobs.runner import JobCronScript
from jobs.testing.fixtures import FrozenClockFixture
from jobs.testing.foojob import DoFooJob
from jobs.testing.testcase import DatabaseTestCase, on_each_database

S = JobStatus
LIMITED = """
[do_foo_limited]
source_interface: jobs.testing.foojob.IDoFooJobSource
max_running_per_key: 1
max_running: 3
"""


@on_each_database
class TestLimits(DatabaseTestCase):

    config_extra = LIMITED

    def setUp(self):
        super().setUp()
        self.clock = self.useFixture(FrozenClockFixture()).clock

    def make(self, count=1, **options):
        jobs = [self.factory.makeDoFooJob(**options) for _ in range(count)]
        transaction.commit()
        return [job.job_id for job in jobs]

    def claim(self, limits, limit=10):
        claimed = DoFooJob.claimReady(limit, 60, limits=limits)
        transaction.commit()
        return sorted(claim.job_id for claim in claimed)

    def complete(self, job_id):
        records.record(get_store(), job_id, 1, S.COMPLETED)
        transaction.commit()

    def test_max_running(self):
        ids = self.make(5)
        limits = Limits("s", max_running=2)
        self.assertEqual(ids[:2], self.claim(limits))
        self.assertEqual([], self.claim(limits))
        self.complete(ids[0])
        self.assertEqual([ids[2]], self.claim(limits))
        # Without limits, the rest at once.
        self.assertEqual(ids[3:], self.claim(None))

    def test_an_orphan_frees_its_slot(self):
        ids = self.make(3)
        limits = Limits("s", max_running=1)
        self.assertEqual(ids[:1], self.claim(limits))
        self.clock.advance(timedelta(seconds=61))  # its lease expired
        # The orphan is ready again and its slot free: one of the two.
        self.assertEqual(1, len(self.claim(limits)))

    def test_max_running_per_key(self):
        a = self.make(3, concurrency_key="a")
        b = self.make(3, concurrency_key="b")
        free = self.make(2)
        limits = Limits("s", max_running_per_key=2)
        self.assertEqual(sorted(a[:2] + b[:2] + free), self.claim(limits))
        self.assertEqual([], self.claim(limits))
        self.complete(a[0])
        self.assertEqual([a[2]], self.claim(limits))

    def test_a_claim_of_one_job_counts_the_others_running(self):
        # A Celery message's claim names its job: the limits still count
        # every RUNNING job of the section, not just that one.
        first, second = self.make(2, concurrency_key="k")
        other = self.make(1, concurrency_key="j")
        limits = Limits("s", max_running_per_key=1)
        self.assertEqual([first], self.claim(limits, limit=1))

        def claim_job(job_id):
            claimed = DoFooJob.claimJob(job_id, 60, limits=limits)
            transaction.commit()
            return [claim.job_id for claim in claimed]

        self.assertEqual([], claim_job(second))
        self.assertEqual(other, claim_job(other[0]))
        self.complete(first)
        self.assertEqual([second], claim_job(second))

    def test_a_full_key_does_not_hold_back_the_others(self):
        # Ahead in priority order: a key already at its limit.
        full = self.make(5, concurrency_key="busy", priority=9)
        self.assertEqual(full[:1], self.claim(Limits("s",
                                                     max_running_per_key=1)))
        other = self.make(2, concurrency_key="other")
        self.assertEqual(other[:1], self.claim(
            Limits("s", max_running_per_key=1)))

    def test_rate_limit_per_period(self):
        ids = self.make(8)
        limits = Limits("s", rate_limit=3, rate_period=60)
        self.assertEqual(ids[:3], self.claim(limits))
        self.clock.advance(timedelta(seconds=30))
        self.assertEqual([], self.claim(limits))
        self.clock.advance(timedelta(seconds=30))  # the window is over
        self.assertEqual(ids[3:5], self.claim(limits, limit=2))
        self.assertEqual(ids[5:6], self.claim(limits))
        self.assertEqual([], self.claim(limits))
        # Each section has its own window.
        self.assertEqual(ids[6:8], self.claim(Limits(
            "other", rate_limit=3, rate_period=60)))

    def test_a_cron_run_keeps_its_sections_limits(self):
        a = self.make(3, concurrency_key="a")
        script = JobCronScript(test_args=["do_foo_limited"],
                               commandline_config=True)
        script.logger = BufferLogger()
        self.assertEqual(0, script.main(), script.logger.getLogBuffer())
        get_store().invalidate()
        # One at a time, each claimed after the one before completed.
        self.assertEqual([S.COMPLETED] * 3, [
            get_store().get(Job, job_id).status for job_id in a])
        self.assertEqual(Limits("do_foo_limited", max_running=3,
                                max_running_per_key=1, rate_period=60.0),
                         Limits.of(get_config().job_section(
                             "do_foo_limited")))

    def test_bad_values_are_refused(self):
        error = self.assertRaises(InvalidJobOption, self.make,
                                  concurrency_key="")
        self.assertEqual("concurrency_key: the empty string: give a key, or"
                         " None for none.", str(error))
        transaction.abort()
        self.assertRaises(InvalidJobOption, self.make, concurrency_key=7)


class TestLimitSettings(TestCase):

    def test_a_negative_limit_is_refused(self):
        folder = self.useFixture(fixtures.TempDir()).path
        path = os.path.join(folder, "bad.conf")
        with open(path, "w") as f:
            f.write("[meta]\nextends: base\n\n" + LIMITED.replace(
                "max_running: 3", "max_running: -1"))
        error = self.assertRaises(
            ConfigError, load(path).job_section, "do_foo_limited")
        self.assertEqual("%s: [do_foo_limited] max_running: -1 is below 0."
                         % path, str(error))


@on_each_database
class TestExplainLimits(DatabaseTestCase):
    """`jobs explain` names the limit that holds a ready job back."""

    config_extra = """
[do_foo]
max_running_per_key: 1
rate_limit: 2
rate_period: 60
"""

    def setUp(self):
        super().setUp()
        self.clock = self.useFixture(FrozenClockFixture()).clock

    def reasons(self, job_id):
        from jobs.explain import explain
        get_store().invalidate()
        return [text for code, text in explain(
            get_store(), get_config(), get_store().get(Job, job_id))
            if code == "limit"]

    def test_the_key_and_the_rate_window_are_explained(self):
        keyed = [self.factory.makeDoFooJob(concurrency_key="k").job_id
                 for _ in range(2)]
        free = self.factory.makeDoFooJob().job_id
        other = self.factory.makeDoFooJob().job_id
        transaction.commit()
        limits = Limits.of(get_config().job_section("do_foo"))
        self.assertEqual([], self.reasons(keyed[1]))
        # The first keyed job and `free`: the window's 2 starts.
        self.assertEqual([keyed[0], free], sorted(
            claim.job_id
            for claim in DoFooJob.claimReady(10, 600, limits=limits)))
        transaction.commit()
        window = "Section do_foo is at its rate limit: 2 started since"
        [key, rate] = self.reasons(keyed[1])
        self.assertEqual("Concurrency key 'k' is at its limit: 1 running,"
                         " max_running_per_key 1.", key)
        self.assertTrue(rate.startswith(window), rate)
        [rate] = self.reasons(other)
        self.assertTrue(rate.startswith(window), rate)
        # A minute later the window is over; the key is still full.
        self.clock.advance(timedelta(seconds=61))
        self.assertEqual([], self.reasons(other))
        self.assertEqual([key], self.reasons(keyed[1]))
