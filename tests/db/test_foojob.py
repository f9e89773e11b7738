"""The reference job type: a context table, its source, acquire()."""

import threading

import transaction
from zope.interface.verify import verifyObject

from jobs.database import disconnect, get_store
from jobs.errors import NotFoundError, UnknownJobType
from jobs.interfaces.job import IJobSource, IRunnableJob, JobStatus
from jobs.model.job import Job
from jobs.testing.foojob import (
    DoBarJob,
    DoFooJob,
    Foo,
    FooJob,
    FooJobDerived,
    FooJobType,
    IDoFooJob,
    IDoFooJobSource,
)
from jobs.testing.testcase import DatabaseTestCase, on_each_database


@on_each_database
class TestDoFooJob(DatabaseTestCase):

    def pending_count(self, foo):
        return self.store.find(
            FooJob, FooJob.foo_id == foo.id, FooJob.job_id == Job.id,
            Job.status == JobStatus.WAITING).count()

    def test_verifyObject(self):
        job = self.factory.makeDoFooJob()
        self.assertTrue(verifyObject(IRunnableJob, job))
        self.assertTrue(verifyObject(IDoFooJob, job))
        self.assertTrue(verifyObject(IJobSource, DoFooJob))
        self.assertTrue(verifyObject(IDoFooJobSource, DoFooJob))

    def test_create_makes_a_waiting_job_of_its_type(self):
        foo = self.factory.makeFoo()
        job = DoFooJob.create(foo, note="x")
        transaction.commit()
        self.assertEqual(JobStatus.WAITING, job.status)
        self.assertEqual(job.job.id, job.job_id)
        self.assertEqual(foo, job.context.foo)
        self.assertEqual({"note": "x"}, job.context.json_data)
        self.assertEqual("<DoFooJob for foo %d; status=Waiting>" % foo.id,
                         repr(job))

    def test_iterReady_yields_only_its_own_type(self):
        foo_job = self.factory.makeDoFooJob()
        bar_job = self.factory.makeDoFooJob(job_class=DoBarJob)
        transaction.commit()
        self.assertEqual([foo_job], list(DoFooJob.iterReady()))
        self.assertEqual([bar_job], list(DoBarJob.iterReady()))
        # The family's base yields both, each as its own class.
        self.assertEqual(
            [DoFooJob, DoBarJob],
            [type(job) for job in FooJobDerived.iterReady()])

    def test_get(self):
        job = self.factory.makeDoFooJob()
        self.assertEqual(job, DoFooJob.get(job.job_id))
        self.assertRaises(NotFoundError, DoBarJob.get, job.job_id)
        self.assertRaises(NotFoundError, DoFooJob.get, job.job_id + 1000)

    def test_unknown_job_type_is_reported(self):
        job = self.factory.makeDoFooJob()
        transaction.commit()
        self.store.execute(
            "UPDATE foo_job SET job_type = 99 WHERE id = ?", (job.context.id,))
        self.store.invalidate()
        # The enum column refuses the unknown value when the row is read.
        error = self.assertRaises(ValueError, self.store.find(FooJob).one)
        self.assertEqual("99 is not a value of FooJobType.", str(error))

    def test_makeSubclass_unknown_type_raises(self):
        class FakeContext:
            id = 1
            job_type = object()
        self.assertRaises(UnknownJobType, FooJobDerived.makeSubclass,
                          FakeContext())

    def test_getOopsVars_adds_the_context(self):
        job = self.factory.makeDoFooJob()
        self.assertEqual(
            [("job_id", job.job_id), ("foo_id", job.context.foo_id),
             ("foo_job_id", job.context.id), ("foo_job_type", "Do foo")],
            job.getOopsVars())

    def test_acquire_twice_returns_the_same_job(self):
        foo = self.factory.makeFoo()
        first = DoFooJob.acquire(foo)
        second = DoFooJob.acquire(foo)
        transaction.commit()
        self.assertEqual(first, second)
        self.assertEqual(1, self.pending_count(foo))

    def test_acquire_after_completion_creates_a_new_job(self):
        foo = self.factory.makeFoo()
        first = DoFooJob.acquire(foo)
        first.acquireLease()
        first.start()
        first.complete()
        second = DoFooJob.acquire(foo)
        self.assertNotEqual(first, second)

    def test_acquire_from_two_connections_creates_one_job(self):
        for _ in range(20):
            foo_id = self.factory.makeFoo().id
            transaction.commit()
            barrier = threading.Barrier(2)
            job_ids = []

            def contender(barrier=barrier, foo_id=foo_id, job_ids=job_ids):
                barrier.wait()
                try:
                    foo = get_store().get(Foo, foo_id)
                    job_ids.append(DoFooJob.acquire(foo).job_id)
                    transaction.commit()
                finally:
                    disconnect()

            threads = [threading.Thread(target=contender) for _ in range(2)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(60)
            self.assertEqual(2, len(job_ids))
            self.assertEqual(1, len(set(job_ids)))
            self.assertEqual(
                1, self.pending_count(self.store.get(Foo, foo_id)))
            transaction.abort()

    def test_class_max_retries_is_written_to_the_row(self):
        class LimitedJob(FooJobDerived):
            context_class = FooJob  # a family of its own: no clash
            class_job_type = FooJobType.DO_FOO
            max_retries = 3
        job = LimitedJob._create(foo=self.factory.makeFoo())
        self.assertEqual(3, job.job.max_retries)
