"""Four real runners over one queue: every job runs exactly once.

Jobs: ``JOBS_RELIABILITY_SCALE=full`` runs 20,000 per mode; CI runs 2,000.
"""

import transaction

from jobs.testing.testcase import DatabaseTestCase
from tests.reliability.fleet import Fleet, scaled, sections
from tests.reliability.ledger import Ledger

JOBS = scaled(2000, 20000)
# Cron: two slots take leases one job at a time (Launchpad's way), two
# claim ten jobs per statement in runs of at most 250 jobs. Workers: two
# claim one job at a time, two ten.
SECTIONS = [{"batch_size": 0, "poll_interval": 0.5}] * 2 + [
    {"batch_size": 10, "poll_interval": 0.5}] * 2
CRON_ARGS = [[], [], ["--max-jobs", "250"], ["--max-jobs", "250"]]


class TestFourRunners(DatabaseTestCase):

    database_kind = "postgresql"
    __test__ = True
    config_extra = sections(SECTIONS)

    def run_fleet(self, modes, args=()):
        """Run `JOBS` recording jobs with a fleet of `modes` to the end;
        check the ledger; return the pids that recorded executions."""
        job_ids = self.factory.makeManyDoFooJobs(JOBS, record=True)
        transaction.commit()
        ledger = Ledger(self.store)
        fleet = self.useFixture(Fleet(modes, args))
        fleet.start()
        fleet.run_until(lambda: ledger.pending() == 0, timeout=scaled(300, 1800),
                        what="every job to finish")
        self.assertEqual({}, fleet.stop(), fleet.log_tails())
        problems, summary = ledger.audit()
        self.assertEqual([], problems, summary)
        # Nothing crashed: every job ran in one attempt.
        self.assertEqual(
            {"jobs": len(job_ids), "statuses": {"Completed": len(job_ids)},
             "executions": len(job_ids), "attempts": len(job_ids),
             "jobs run more than once": 0}, summary)
        pids = {row[0] for row in self.store.execute(
            "SELECT DISTINCT pid FROM job_execution")}
        transaction.abort()
        return fleet, pids

    def test_four_cron_slots_run_each_job_exactly_once(self):
        fleet, pids = self.run_fleet(["cron"] * 4, CRON_ARGS)
        # Runs overlapped and shared the work. (Not every slot need have
        # run a job: a lease-by-lease runner can lose every race.)
        self.assertGreaterEqual(len(pids), 2)

    def test_four_workers_run_each_job_exactly_once(self):
        fleet, pids = self.run_fleet(["worker"] * 4)
        self.assertEqual(4, len(pids))
