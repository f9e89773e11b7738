"""Job code that misbehaves harms no other job (issue 14, item 1):
`run_jobs.py` in-process (`JobCronScript`), on both databases.

Each job here runs in a batch with innocent jobs: the misbehaving one
FAILS with an OOPS that says what it did; the others run once, as their
first attempt, and the run goes on (exit 0).
"""

import transaction
from testtools.matchers import Contains

from jobs.database import get_store
from jobs.interfaces.job import JobStatus
from jobs.log import BufferLogger
from jobs.model.job import Job
from jobs.runner import JobCronScript
from jobs.testing.foojob import Foo
from jobs.testing.testcase import DatabaseTestCase, on_each_database

S = JobStatus


@on_each_database
class TestHostileJobs(DatabaseTestCase):

    def make(self, **behaviour):
        job = self.factory.makeDoFooJob(
            foo=self.factory.makeFoo(), note="written", record=True,
            **behaviour)
        return job.job_id

    def run_batch(self, behaviour, *options):
        """An innocent job, the misbehaving one, two innocent ones; run
        them in one batch; return (the misbehaving job's id, the log)."""
        first = self.make()
        bad = self.make(**behaviour)
        rest = [self.make(), self.make()]
        transaction.commit()
        script = JobCronScript(
            test_args=["--batch-size", "10", *options, "do_foo"],
            commandline_config=True)
        script.logger = BufferLogger()
        code = script.main()
        log = script.logger.getLogBuffer()
        self.assertEqual(0, code, log)
        self.innocent = [first] + rest
        return bad, log

    def state(self, job_id):
        # get_store(): a job that closed its store closed the test's too.
        store = get_store()
        store.invalidate()
        job = store.get(Job, job_id)
        return job.status, job.attempt_count

    def executions(self, job_id):
        rows = list(get_store().execute(
            "SELECT attempt FROM job_execution WHERE job = ?", (job_id,)))
        transaction.abort()
        return [attempt for attempt, in rows]

    def assertInnocentsRanOnce(self):
        for job_id in self.innocent:
            self.assertEqual((S.COMPLETED, 1), self.state(job_id), job_id)
            self.assertEqual([1], self.executions(job_id), job_id)

    def assertFailedWith(self, job_id, error_type, value=None):
        self.assertEqual((S.FAILED, 1), self.state(job_id))
        [oops] = [report for report in self.oopses()
                  if report.get("job_id") == job_id]
        self.assertEqual(error_type, oops["type"])
        if value is not None:
            self.assertThat(oops["value"], Contains(value))
        return oops

    def note(self, job_id):
        store = get_store()
        foo_id = store.execute(
            "SELECT foo FROM foo_job WHERE job = ?", (job_id,)).get_one()[0]
        return store.get(Foo, foo_id).note

    # Exceptions that are not Exceptions.

    def test_sys_exit_fails_only_that_job(self):
        bad, log = self.run_batch({"misbehave": "sys.exit"})
        self.assertFailedWith(bad, "SystemExit", "3")
        self.assertInnocentsRanOnce()
        self.assertEqual([], self.executions(bad))  # rolled back

    def test_keyboard_interrupt_from_job_code_fails_only_that_job(self):
        bad, _ = self.run_batch({"misbehave": "KeyboardInterrupt"})
        self.assertFailedWith(bad, "KeyboardInterrupt")
        self.assertInnocentsRanOnce()

    def test_generator_exit_fails_only_that_job(self):
        bad, _ = self.run_batch({"misbehave": "GeneratorExit"})
        self.assertFailedWith(bad, "GeneratorExit")
        self.assertInnocentsRanOnce()

    def test_bare_base_exception_fails_only_that_job(self):
        bad, _ = self.run_batch({"misbehave": "BaseException"})
        self.assertFailedWith(bad, "BaseException", "bare")
        self.assertInnocentsRanOnce()

    # Ending the transaction the runner gave the job.

    def assertMisuse(self, how, committed, raise_=None):
        behaviour = {"misbehave": how}
        if raise_:
            behaviour["raise_"] = raise_
        bad, log = self.run_batch(behaviour)
        oops = self.assertFailedWith(bad, "TransactionMisuse", how_said(how))
        self.assertInnocentsRanOnce()
        # What it wrote before ending its transaction: kept by a commit,
        # gone with a rollback.
        self.assertEqual([1] if committed else [], self.executions(bad))
        self.assertEqual("written" if committed else None, self.note(bad))
        return oops

    def test_transaction_commit_then_raise(self):
        oops = self.assertMisuse("transaction.commit", True, raise_="error")
        self.assertThat(oops["value"], Contains("then it raised ValueError"))

    def test_store_commit(self):
        self.assertMisuse("store.commit", True)

    def test_commit_as_sql_then_raise(self):
        self.assertMisuse("COMMIT", True, raise_="error")

    def test_transaction_abort(self):
        self.assertMisuse("transaction.abort", False)

    def test_store_rollback(self):
        self.assertMisuse("store.rollback", False)

    def test_rollback_as_sql(self):
        self.assertMisuse("ROLLBACK", False)

    def test_store_close(self):
        self.assertMisuse("store.close", False)

    # The same in a group commit: the group's earlier outcomes follow what
    # the job did to their work.

    def test_commit_in_a_group_keeps_the_outcomes_before_it(self):
        self.make()  # a second group member before the misbehaving one
        bad, _ = self.run_batch({"misbehave": "COMMIT"}, "--batch-size",
                                "10")
        self.assertFailedWith(bad, "TransactionMisuse")

    # Progress after locking its own row: never waits on its own lock.

    def test_progress_after_locking_its_own_row_does_not_hang(self):
        bad, _ = self.run_batch({"misbehave": "own_row_progress"})
        self.assertEqual((S.COMPLETED, 1), self.state(bad))
        self.store.invalidate()
        self.assertThat(self.store.get(Job, bad).progress,
                        Contains("after locking my own row"))
        self.assertInnocentsRanOnce()


def how_said(how):
    """The words of the OOPS that name what the job did."""
    return {"store.close": "closed the store"}.get(how, "the transaction")
