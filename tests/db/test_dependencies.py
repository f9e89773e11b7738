"""Dependencies between jobs (issue 16, item 2), on both databases: a job
runs once the jobs it depends on have completed and gets their results;
a failure cancels its dependents (unless they run anyway), a retry makes
them pending again; cycles are refused."""

import io
import threading

import fixtures
import transaction
from testtools.matchers import Contains

from jobs import operations, result_of
from jobs.cli import main
from jobs.database import get_store
from jobs.errors import DependencyCycle, InvalidJobOption
from jobs.interfaces.job import JobStatus
from jobs.log import BufferLogger
from jobs.model import dependencies
from jobs.model.job import Job
from jobs.runner import JobCronScript
from jobs.testing import tasks
from jobs.testing.foojob import DoFooJob
from jobs.testing.testcase import DatabaseTestCase, on_each_database

S = JobStatus


class DependencyTestCase(DatabaseTestCase):

    config_extra = tasks.SECTION

    def run_section(self, section="do_foo", *options):
        script = JobCronScript(test_args=[*options, section],
                               commandline_config=True)
        script.logger = BufferLogger()
        log = script.logger.getLogBuffer
        self.assertEqual(0, script.main(), log())
        get_store().invalidate()
        return log()

    def make(self, **options):
        return self.factory.makeDoFooJob(**options)

    def statuses(self, *jobs):
        get_store().invalidate()
        return [get_store().get(Job, getattr(job, "job_id", job)).status
                for job in jobs]


@on_each_database
class TestDependencies(DependencyTestCase):

    def test_a_diamond_runs_in_order_and_passes_results(self):
        a = self.make(return_={"a": 1})
        b = self.make(return_="b", depends_on=[a])
        c = self.make(return_=3, depends_on=[a.job_id])
        d = self.make(depends_on=[b, c])
        transaction.commit()
        self.assertEqual([S.WAITING, S.BLOCKED, S.BLOCKED, S.BLOCKED],
                         self.statuses(a, b, c, d))
        self.assertEqual([0, 1, 1, 2], [job.job.waiting_on
                                        for job in (a, b, c, d)])
        # One cron run: each outcome that makes a job ready lets the run
        # claim again.
        log = self.run_section()
        self.assertEqual([S.COMPLETED] * 4, self.statuses(a, b, c, d), log)
        started = [get_store().get(Job, job.job_id).date_started
                   for job in (a, b, c, d)]
        self.assertTrue(started[0] <= min(started[1:3]) and
                        max(started[1:3]) <= started[3], started)
        self.assertEqual({b.job_id: "b", c.job_id: 3}, d.dependency_results())
        self.assertEqual({"a": 1}, a.job.result)

    def test_task_arguments_from_results(self):
        first = tasks.behave.delay(return_=2)
        left = tasks.add.delay(result_of(first), 3)
        right = tasks.add.apply_async(kwargs={"a": result_of(first),
                                              "b": 10})
        last = tasks.add.delay(result_of(left), b=result_of(right))
        transaction.commit()
        # result_of() made each a dependency.
        self.assertEqual(
            ([left.job_id, right.job_id], []),
            dependencies.dependency_ids(get_store(), last.job_id))
        self.run_section("do_tasks")
        self.assertEqual(17, tasks.add.get(last.job_id).result)
        self.assertEqual(5, tasks.add.get(left.job_id).result)

    def test_bulk_creation_with_dependencies(self):
        first = self.make()
        ids = DoFooJob.createMany(
            [{"foo": self.factory.makeFoo(), "json_data": {}},
             {"foo": self.factory.makeFoo(), "json_data": {},
              "depends_on": []}], depends_on=[first])
        calls = tasks.add.bulk([(result_of(first), 1), (2, 3)])
        transaction.commit()
        self.assertEqual([S.BLOCKED, S.WAITING, S.BLOCKED, S.WAITING],
                         self.statuses(*ids, *calls))

    def test_a_failure_cancels_the_dependents_down_the_graph(self):
        broken = self.make(raise_="error")
        child = self.make(depends_on=[broken])
        grandchild = self.make(depends_on=[child])
        anyway = self.make(depends_on=[broken], on_dependency_failure="run")
        transaction.commit()
        self.run_section()
        self.assertEqual([S.FAILED, S.CANCELLED, S.CANCELLED, S.COMPLETED],
                         self.statuses(broken, child, grandchild, anyway))
        self.assertEqual([broken.job_id, child.job_id],
                         [child.job.cancelled_by,
                          grandchild.job.cancelled_by])
        # One OOPS: the failure; the cancellations are its consequence.
        self.assertEqual([broken.job_id],
                         [report["job_id"] for report in self.oopses()])

    def test_a_retry_of_the_failed_dependency_reenables_its_dependents(self):
        flaky = self.make(retry_until=2)  # fails once (max_retries 0)
        child = self.make(depends_on=[flaky])
        grandchild = self.make(depends_on=[child])
        transaction.commit()
        self.run_section()
        self.assertEqual([S.FAILED, S.CANCELLED, S.CANCELLED],
                         self.statuses(flaky, child, grandchild))
        # What `jobs retry ID` and the dashboard's Retry do.
        operations.apply(get_store(), operations.ACTIONS["retry"],
                         [flaky.job_id])
        transaction.commit()
        self.assertEqual([S.WAITING, S.BLOCKED, S.BLOCKED],
                         self.statuses(flaky, child, grandchild))
        self.assertEqual([None, None], [child.job.cancelled_by,
                                        grandchild.job.cancelled_by])
        self.run_section()
        self.assertEqual([S.COMPLETED] * 3,
                         self.statuses(flaky, child, grandchild))

    def test_cancelling_a_blocked_job_cancels_its_dependents(self):
        first = self.make()
        second = self.make(depends_on=[first])
        third = self.make(depends_on=[second])
        transaction.commit()
        get_store().get(Job, second.job_id).cancel()
        transaction.commit()
        self.assertEqual([S.WAITING, S.CANCELLED, S.CANCELLED],
                         self.statuses(first, second, third))
        self.assertEqual(second.job_id, third.job.cancelled_by)

    def test_an_operators_cancel_cancels_the_dependents(self):
        first = self.make()
        second = self.make(depends_on=[first])
        third = self.make(depends_on=[second])
        anyway = self.make(depends_on=[first], on_dependency_failure="run")
        transaction.commit()
        # What `jobs cancel ID` and the dashboard's Cancel do: a WAITING
        # job, then a BLOCKED one.
        operations.apply(get_store(), operations.ACTIONS["cancel"],
                         [first.job_id])
        transaction.commit()
        self.assertEqual([S.CANCELLED, S.CANCELLED, S.CANCELLED, S.WAITING],
                         self.statuses(first, second, third, anyway))
        self.assertEqual([first.job_id, second.job_id],
                         [second.job.cancelled_by, third.job.cancelled_by])
        blocked = self.make(depends_on=[anyway])
        transaction.commit()
        moved, _ = operations.apply(get_store(),
                                    operations.ACTIONS["cancel"],
                                    [blocked.job_id])
        transaction.commit()
        self.assertEqual(([blocked.job_id], [S.CANCELLED]),
                         (moved, self.statuses(blocked)))

    def test_dependencies_already_finished_at_creation(self):
        done = self.make()
        failed = self.make(raise_="error")
        transaction.commit()
        self.run_section()
        after_done = self.make(depends_on=[done])
        after_failed = self.make(depends_on=[failed])
        anyway = self.make(depends_on=[failed, done],
                           on_dependency_failure="run")
        transaction.commit()
        self.assertEqual([S.WAITING, S.CANCELLED, S.WAITING],
                         self.statuses(after_done, after_failed, anyway))
        self.assertEqual(failed.job_id, after_failed.job.cancelled_by)

    def test_bad_dependencies_are_refused_at_creation(self):
        error = self.assertRaises(InvalidJobOption, self.make,
                                  depends_on=[424242])
        self.assertEqual("depends_on: there is no job 424242.", str(error))
        transaction.abort()
        error = self.assertRaises(InvalidJobOption, self.make,
                                  depends_on=["seven"])
        self.assertEqual("depends_on: 'seven' is not a job or a job id.",
                         str(error))
        error = self.assertRaises(InvalidJobOption, self.make,
                                  on_dependency_failure="ignore")
        self.assertEqual(
            "on_dependency_failure: 'ignore' is not 'cancel' or 'run'.",
            str(error))

    def test_cycles_are_refused(self):
        first = self.make()
        second = self.make(depends_on=[first])
        third = self.make(depends_on=[second])
        transaction.commit()
        store = get_store()
        error = self.assertRaises(
            DependencyCycle, dependencies.add_dependencies, store,
            first.job_id, [third.job_id])
        self.assertEqual(
            "Job %d cannot depend on job %d: that would make a cycle"
            " (%d -> %d -> %d -> %d)." % (
                first.job_id, third.job_id, first.job_id, third.job_id,
                second.job_id, first.job_id), str(error))
        self.assertRaises(DependencyCycle, dependencies.add_dependencies,
                          store, first.job_id, [first.job_id])
        # A job that exists may get more dependencies, cycles aside.
        other = self.make()
        dependencies.add_dependencies(store, first.job_id, [other.job_id])
        transaction.commit()
        self.assertEqual([S.BLOCKED], self.statuses(first))

    def test_a_blocked_job_holds_its_unique_key(self):
        first = self.make()
        blocked = self.make(depends_on=[first], unique_key="k")
        again = self.make(unique_key="k")
        self.assertEqual(blocked.job_id, again.job_id)

    def test_the_dependency_graph_both_ways(self):
        a = self.make()
        b = self.make(depends_on=[a])
        c = self.make(depends_on=[a, b])
        store = get_store()
        self.assertEqual({c.job_id: [(a.job_id, 0, "foo_job:0"),
                                     (b.job_id, 6, "foo_job:0")],
                          b.job_id: [(a.job_id, 0, "foo_job:0")]},
                         dependencies.graph(store, c.job_id, upstream=True))
        self.assertEqual({a.job_id: [(b.job_id, 6, "foo_job:0"),
                                     (c.job_id, 6, "foo_job:0")],
                          b.job_id: [(c.job_id, 6, "foo_job:0")]},
                         dependencies.graph(store, a.job_id, upstream=False))


class TestConcurrentOutcome(DependencyTestCase):
    """PostgreSQL: a dependent attached while its dependency's outcome is
    being recorded by another connection is settled either way round."""

    database_kind = "postgresql"
    __test__ = True

    def other_connection_completes(self, job_id, started, go):
        from jobs.database import disconnect
        from jobs.model import records
        store = get_store()
        try:
            attempt = store.execute(
                "UPDATE job SET status = 1, attempt_count = 1 WHERE id = ?"
                " RETURNING attempt_count", (job_id,)).get_one()[0]
            transaction.commit()
            started.set()
            go.wait(30)
            records.record(store, job_id, attempt, S.COMPLETED)
            transaction.commit()
        finally:
            transaction.abort()
            disconnect()

    def race(self, outcome_first):
        dependency = self.make()
        transaction.commit()
        started, go = threading.Event(), threading.Event()
        thread = threading.Thread(target=self.other_connection_completes,
                                  args=(dependency.job_id, started, go))
        thread.start()
        self.addCleanup(thread.join, 30)
        self.addCleanup(go.set)
        self.assertTrue(started.wait(30))
        if outcome_first:
            go.set()
            thread.join(30)
        # (Otherwise the outcome waits on this transaction's lock.)
        dependent = self.make(depends_on=[dependency])
        go.set()
        transaction.commit()
        thread.join(30)
        self.assertEqual([S.COMPLETED, S.WAITING],
                         self.statuses(dependency, dependent))

    def test_outcome_recorded_first(self):
        self.race(outcome_first=True)

    def test_dependent_attached_first(self):
        self.race(outcome_first=False)


@on_each_database
class TestShow(DependencyTestCase):

    def jobs(self, *argv):
        out, err = io.StringIO(), io.StringIO()
        self.useFixture(fixtures.MonkeyPatch("sys.stdout", out))
        self.useFixture(fixtures.MonkeyPatch("sys.stderr", err))
        code = main(list(argv))
        return code, out.getvalue(), err.getvalue()

    def test_jobs_show_prints_the_result_and_both_trees(self):
        a = self.make(return_={"rows": 3})
        b = self.make(depends_on=[a])
        c = self.make(depends_on=[b])
        transaction.commit()
        self.run_section("do_foo", "--max-jobs", "1")
        code, out, err = self.jobs("show", str(b.job_id))
        self.assertEqual(0, code, err)
        self.assertThat(out, Contains(
            "depends on:\n  - job %d  Completed  foo_job:0\n" % a.job_id))
        self.assertThat(out, Contains(
            "dependents:\n  - job %d  Blocked  foo_job:0" % c.job_id))
        code, out, err = self.jobs("show", str(a.job_id))
        self.assertThat(out, Contains('result:          {"rows": 3}\n'))
        self.assertThat(out, Contains(
            "dependents:\n  - job %d  Waiting  foo_job:0\n"
            "    - job %d  Blocked  foo_job:0" % (b.job_id, c.job_id)))
