"""The short import paths a newcomer is shown: `jobs` and `jobs.model`."""

import testtools


class TestPublicAPI(testtools.TestCase):

    def test_jobs_exports_task_setup_and_the_store(self):
        import jobs
        import jobs.config
        import jobs.database
        import jobs.tasks
        from jobs import connect, get_store, setup, task
        self.assertEqual(
            (jobs.tasks.task, jobs.registration.setup, jobs.database.connect,
             jobs.database.get_store), (task, setup, connect, get_store))
        self.assertRaises(AttributeError, getattr, jobs, "nothing_here")

    def test_jobs_model_exports_the_bases(self):
        from jobs.model import (
            BaseRunnableJob,
            BaseRunnableJobSource,
            DerivedJob,
            EnumeratedSubclass,
            FunctionJob,
            Job,
        )
        self.assertEqual(
            ["BaseRunnableJob", "BaseRunnableJobSource", "DerivedJob",
             "EnumeratedSubclass", "FunctionJob", "Job"],
            [cls.__name__ for cls in (
                BaseRunnableJob, BaseRunnableJobSource, DerivedJob,
                EnumeratedSubclass, FunctionJob, Job)])

    def test_a_storm_class_without_init_can_be_a_context_table(self):
        # README, "Defining a job type", step 2, as printed.
        from storm.locals import Int, Reference
        from jobs.model import DerivedJob, Job

        class Plain:
            __storm_table__ = "plain_job"
            id = Int(primary=True)
            job_id = Int(name="job")
            job = Reference(job_id, Job.id)
            job_type = Int()
            note = Int()

        class PlainJob(DerivedJob):
            context_class = Plain

        job = Job()
        context = PlainJob._new_context(job, {"note": 3})
        self.assertEqual((3, job), (context.note, context.job))
