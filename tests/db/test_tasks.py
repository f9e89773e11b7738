"""``@task`` function jobs (`jobs.tasks`), on both databases: created in the
caller's transaction, run by the section that lists them, through the same
outcome table as every job; a row naming anything but a registered task
fails with an OOPS and imports nothing."""

import os
import re
import sys
from datetime import timedelta

import fixtures
import transaction
from testtools.matchers import Contains

from jobs.errors import ConfigError, InvalidJobData, TaskNotAllowed
from jobs.interfaces.job import IJobSource, IRunnableJob, JobStatus
from jobs.log import BufferLogger
from jobs.model.function import FunctionJob, TaskJob
from jobs.model.job import Job
from jobs.runner import JobCronScript
from jobs.sections import find_section_source
from jobs import task
from jobs.testing import tasks
from jobs.testing.fixtures import FrozenClockFixture
from jobs.testing.testcase import DatabaseTestCase, on_each_database

WAITING, COMPLETED, FAILED, SUSPENDED = (
    JobStatus.WAITING, JobStatus.COMPLETED, JobStatus.FAILED,
    JobStatus.SUSPENDED)

PROBE = '''
import os
open(os.environ["TASK_PROBE_MARKER"], "w").close()
def run():
    raise AssertionError("the probe ran")
'''


@task(section="do_foo")
def elsewhere():
    """A task whose section runs DoFooJob, not tasks."""


class TaskTestCase(DatabaseTestCase):

    config_extra = tasks.SECTION

    def run_section(self, *options, section="do_tasks"):
        script = JobCronScript(test_args=list(options) + [section],
                               commandline_config=True)
        script.logger = BufferLogger()
        code = script.lock_and_run()
        self.store.invalidate()
        log = script.logger.getLogBuffer()
        self.assertEqual(0, code, log)
        return log

    def status(self, job):
        return self.store.get(Job, job.job_id).status

    def executions(self):
        return sorted(row[0] for row in self.store.execute(
            "SELECT job FROM job_execution"))


@on_each_database
class TestTasks(TaskTestCase):

    def test_delay_creates_the_job_in_the_callers_transaction(self):
        job = tasks.add.delay(2, b=3)
        self.assertEqual((WAITING, "task:jobs.testing.tasks.add", 1),
                         (job.status, job.job.kind, job.job.priority))
        self.assertEqual(("jobs.testing.tasks.add", [2], {"b": 3}),
                         (job.context.task, job.context.args,
                          job.context.kwargs))
        transaction.abort()
        self.assertEqual([0, 0], [self.store.find(table).count()
                                  for table in (Job, TaskJob)])

    def test_a_committed_job_runs_and_run_returns_the_functions_value(self):
        job = tasks.add.delay(2, 3)
        transaction.commit()
        source = find_section_source(self.config, "do_tasks")
        [loaded] = source.getJobs([job.job_id])
        self.assertEqual(5, loaded.run())
        transaction.abort()
        log = self.run_section()
        self.assertThat(log, Contains("Ran 1 FunctionJob jobs."))
        self.assertEqual(COMPLETED, self.status(job))
        self.assertEqual(7, tasks.add(3, 4))  # calling the task calls it

    def test_the_source_and_its_jobs_provide_their_interfaces(self):
        from zope.interface.verify import verifyObject
        source = find_section_source(self.config, "do_tasks")
        job = tasks.add.delay(1, 1)
        self.assertTrue(verifyObject(IJobSource, source))
        self.assertTrue(verifyObject(IRunnableJob, source.get(job.job_id)))

    def test_the_outcome_table_holds_for_function_jobs(self):
        clock = self.useFixture(FrozenClockFixture()).clock
        behave = tasks.behave
        jobs = {
            "returns": behave.delay(record=1, return_="ok"),
            "retry": behave.delay(record=2, raise_="retry"),
            "user": behave.delay(record=3, raise_="user"),
            "suspend": behave.delay(record=4, raise_="suspend"),
            "error": behave.delay(record=5, raise_="error"),
        }
        transaction.commit()
        self.run_section()
        self.assertEqual(
            {"returns": COMPLETED, "retry": WAITING, "user": FAILED,
             "suspend": SUSPENDED, "error": FAILED},
            {name: self.status(job) for name, job in jobs.items()})
        # The job's own work: kept when it completes, is retried or
        # suspends; rolled back when it fails.
        self.assertEqual([1, 2, 4], self.executions())
        retried = self.store.get(Job, jobs["retry"].job_id)
        self.assertEqual(clock.now() + timedelta(seconds=60),
                         retried.scheduled_start)
        self.assertEqual(["ValueError"],
                         [oops["type"] for oops in self.oopses()])
        [oops] = self.oopses()
        self.assertEqual(
            {"job_id": str(jobs["error"].job_id),
             "task": "jobs.testing.tasks.behave"}, oops["req_vars"])
        # Its one retry used, the next retry error fails it with an OOPS.
        transaction.abort()
        clock.advance(timedelta(seconds=61))
        self.run_section()
        self.assertEqual(FAILED, self.status(jobs["retry"]))
        self.assertEqual(["ValueError", "RetryError"],
                         [oops["type"] for oops in self.oopses()])

    def test_a_row_naming_a_function_that_is_not_a_task_fails_and_imports_nothing(self):
        folder = self.useFixture(fixtures.TempDir()).path
        marker = os.path.join(folder, "imported")
        with open(os.path.join(folder, "jobs_task_probe.py"), "w") as f:
            f.write(PROBE)
        self.useFixture(fixtures.EnvironmentVariable(
            "TASK_PROBE_MARKER", marker))
        self.useFixture(fixtures.MonkeyPatch(
            "sys.path", [folder] + sys.path))
        named = {}
        # A plain function of the section's module, a module the runner
        # could import, and a kind that does not say what the row calls.
        for kind, name in [
                ("task:jobs.testing.tasks.not_a_task",
                 "jobs.testing.tasks.not_a_task"),
                ("task:jobs.testing.tasks.probe", "jobs_task_probe.run"),
                ("task:jobs.testing.tasks.add", "jobs_task_probe.run")]:
            job = Job(kind=kind)
            self.store.add(job)
            self.store.add(TaskJob(job, name, [], {}))
            self.store.flush()
            named[job.id] = name
        transaction.commit()
        self.run_section()
        self.assertEqual([FAILED] * 3, [self.store.get(Job, job_id).status
                                         for job_id in named])
        oopses = self.oopses()
        self.assertEqual(["TaskNotAllowed"] * 3,
                         [oops["type"] for oops in oopses])
        self.assertEqual(
            sorted("Job %d names %s, which is not a registered @task of"
                   " section do_tasks (tasks: jobs.testing.tasks.*): it was"
                   " not run, and nothing was imported for it." % item
                   for item in named.items()),
            sorted(oops["value"] for oops in oopses))
        self.assertFalse(os.path.exists(marker))
        self.assertNotIn("jobs_task_probe", sys.modules)

    def test_delay_and_priority_are_obeyed(self):
        clock = self.useFixture(FrozenClockFixture()).clock
        behave = tasks.behave
        low = behave.apply_async(priority=1)
        high = behave.apply_async(priority=9)
        middle = behave.apply_async(priority=5)
        delayed = behave.apply_async(delay=60, priority=100)
        scheduled = behave.apply_async(
            scheduled_start=clock.now() + timedelta(seconds=30),
            priority=100)
        transaction.commit()
        log = self.run_section()
        self.assertEqual([high.job_id, middle.job_id, low.job_id],
                         [int(n) for n in re.findall(r"Running .*\(ID (\d+)\)",
                                                     log)])
        self.assertEqual([WAITING, WAITING],
                         [self.status(delayed), self.status(scheduled)])
        clock.advance(timedelta(seconds=31))
        self.run_section()
        self.assertEqual([WAITING, COMPLETED],
                         [self.status(delayed), self.status(scheduled)])
        clock.advance(timedelta(seconds=30))
        self.run_section()
        self.assertEqual(COMPLETED, self.status(delayed))

    def test_other_runners_run_function_jobs(self):
        for options in (("--batch-size", "3"), ("--processes", "1")):
            jobs = [tasks.behave.delay(record=n) for n in range(4)]
            transaction.commit()
            self.run_section(*options)
            self.assertEqual([COMPLETED] * 4,
                             [self.status(job) for job in jobs], options)
            self.store.execute("DELETE FROM job_execution")
            transaction.commit()

    def test_the_jobs_command_lists_a_sections_function_jobs(self):
        import io
        import json
        from jobs.cli import main
        made = [tasks.add.delay(1, 2), tasks.behave.delay()]
        self.factory.makeDoFooJob()
        transaction.commit()
        out = io.StringIO()
        self.useFixture(fixtures.MonkeyPatch("sys.stdout", out))
        self.assertEqual(0, main(["--format", "json", "list", "--type",
                                  "do_tasks"]))
        self.assertEqual(sorted(job.job_id for job in made),
                         sorted(row["id"] for row in json.loads(
                             out.getvalue())))

    def test_bulk_creates_every_job_in_order(self):
        calls = [(n,) for n in range(1200)] + [
            {"args": (1200,), "priority": 7},
            {"kwargs": {"record": 1201}, "unique_key": "last"},
            {"kwargs": {"record": 1202}, "unique_key": "last"}]
        ids = tasks.behave.bulk(calls, priority=2)
        transaction.commit()
        self.assertEqual(1203, len(ids))
        self.assertEqual(ids[-2], ids[-1])  # the key was taken: same job
        self.assertEqual(sorted(set(ids)), ids[:-1])
        rows = dict(self.store.execute(
            "SELECT job.id, task_job.args FROM job JOIN task_job"
            " ON task_job.job = job.id"))
        self.assertEqual(1202, len(rows))
        priorities = dict(self.store.execute("SELECT id, priority FROM job"))
        self.assertEqual((2, 7, 2), (priorities[ids[0]], priorities[ids[1200]],
                                      priorities[ids[1201]]))
        self.run_section("--batch-size", "500")
        self.assertEqual(1202, self.store.find(
            Job, Job.status == COMPLETED).count())
        self.assertEqual(list(range(1202)), self.executions())

    def test_bad_arguments_fail_at_creation_naming_the_task(self):
        for call, message in [
                (lambda: tasks.add.delay(1), "Task jobs.testing.tasks.add:"
                 " missing a required argument: 'b'."),
                (lambda: tasks.add.delay(1, 2, c=3), "Task jobs.testing.tasks"
                 ".add: got an unexpected keyword argument 'c'."),
                (lambda: tasks.add.delay({1, 2}, 3), "the arguments of task"
                 " jobs.testing.tasks.add is not JSON: Object of type set is"
                 " not JSON serializable."),
                (lambda: tasks.add.apply_async(args=5), "Task jobs.testing."
                 "tasks.add: args must be a tuple or list, not 5.")]:
            error = self.assertRaises(InvalidJobData, call)
            self.assertEqual(message, str(error))
        self.assertEqual(0, self.store.find(Job).count())

    def test_a_task_whose_section_does_not_list_it_is_refused(self):
        error = self.assertRaises(ConfigError, elsewhere.delay)
        self.assertThat(str(error), Contains(
            "section do_foo of %s does not run it (its tasks: none; it sets"
            " source_interface)." % self.config.path))


@on_each_database
class TestCurrentAttempt(TaskTestCase):
    """A task function reaches its attempt through current_attempt()."""

    def test_a_task_uses_its_attempts_key_and_progress(self):
        from jobs import current_attempt
        self.assertIsNone(current_attempt())  # outside a runner
        job = tasks.charge_in_chunks.delay(7, 3)
        job_id = job.job_id
        transaction.commit()
        self.run_section()
        row = self.store.get(Job, job_id)
        self.assertEqual(COMPLETED, row.status)
        # Each charge carried the key (job id, attempt 1).
        self.assertEqual(
            [(job_id, 1, 1), (job_id, 1, 2), (job_id, 1, 3)],
            sorted(self.store.execute(
                "SELECT job, attempt, pid FROM job_execution")))
        self.assertIn('"charged chunk 3"', row.progress)
        self.assertIsNone(current_attempt())


class TestTaskDefinition(TaskTestCase):

    database_kind = "sqlite"
    __test__ = True

    def test_only_module_level_functions_are_tasks(self):
        def inner():
            pass
        error = self.assertRaises(TypeError, task, inner)
        self.assertThat(str(error), Contains(
            "@task needs a function defined at the top level of a module"))

    def test_bad_settings_fail_at_decoration(self):
        for settings, error_type, message in [
                ({"max_retries": -1}, ValueError, "max_retries: -1 is"
                 " outside its range: 0 to 1,000."),
                ({"max_retries": 1.5}, TypeError, "max_retries: 1.5 is not"
                 " a whole number."),
                ({"retry_delay": "soon"}, TypeError, "retry_delay: 'soon' is"
                 " not seconds or a timedelta."),
                ({"retry_delay": -1}, ValueError, "retry_delay: -1 is outside"
                 " its range: more than 0 and at most 31,536,000 seconds"
                 " (a year)."),
                ({"lease_seconds": 0.001}, ValueError, "lease_seconds: 0.001"
                 " is outside its range: 1 to 31,536,000 seconds (a year)."),
                ({"section": 3}, TypeError, "section 3 is not a section"
                 " name.")]:
            error = self.assertRaises(error_type, task(**settings),
                                      tasks.not_a_task)
            self.assertThat(str(error), Contains(message))

    def test_the_runner_refuses_what_it_did_not_register(self):
        # A task registered after the section's source was made is not
        # in its allow-list: only those registered at start-up run.
        source = find_section_source(self.config, "do_tasks")
        self.assertEqual(
            {"jobs.testing.tasks.add", "jobs.testing.tasks.behave",
             "jobs.testing.tasks.charge_in_chunks",
             "jobs.testing.tasks.make_foo"},
            set(source.allowed))
        self.assertTrue(issubclass(source, FunctionJob))
        self.assertIs(source, find_section_source(self.config, "do_tasks"))
        job = source(TaskJob(Job(), "jobs.testing.tasks.late", [], {}))
        self.assertRaises(TaskNotAllowed, job.run)
