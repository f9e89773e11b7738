"""The baz family (a second context table) and `UnloadableJob` provide
their interfaces."""

import transaction
from zope.interface.verify import verifyObject

from jobs.errors import JobLoadError
from jobs.interfaces.job import IJobSource, IRunnableJob
from jobs.model.runnable import UnloadableJob
from jobs.testing.bazjob import DoBazJob, IDoBazJobSource
from jobs.testing.testcase import DatabaseTestCase, on_each_database


@on_each_database
class TestBazJob(DatabaseTestCase):

    def test_verifyObject(self):
        job = DoBazJob.create()
        self.assertTrue(verifyObject(IRunnableJob, job))
        self.assertTrue(verifyObject(IJobSource, DoBazJob))
        self.assertTrue(verifyObject(IDoBazJobSource, DoBazJob))
        self.assertTrue(verifyObject(
            IRunnableJob, UnloadableJob(job.job, JobLoadError("bad row"))))

    def test_declares_its_context_table(self):
        self.assertEqual({"baz_job": {"SELECT", "UPDATE"}},
                         DoBazJob.databasePrivileges())

    def test_run_marks_its_context_done(self):
        job = DoBazJob.create(note="x")
        transaction.commit()
        job.run()
        self.assertEqual({"note": "x", "done": True}, job.context.json_data)
