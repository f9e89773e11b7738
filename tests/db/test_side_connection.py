"""The runner's side connection (`jobs.heartbeat.SideConnection`) on
PostgreSQL: each statement commits by itself, so a row lock it takes
lasts one statement, even when its runner freezes between two
statements (a lock held across a freeze would hide the frozen runner's
job from the runner that should take it over: claims skip locked rows).
"""

import threading

import psycopg2
import transaction

from jobs.database import get_store
from jobs.heartbeat import SideConnection
from jobs.testing.fixtures import _dsn
from jobs.testing.testcase import DatabaseTestCase


class TestSideConnection(DatabaseTestCase):

    database_kind = "postgresql"
    __test__ = True

    def test_a_row_lock_lasts_one_statement(self):
        job_id = self.factory.makeDoFooJob().job_id
        transaction.commit()
        updated, resume = threading.Event(), threading.Event()

        def renew_then_freeze(store):
            store.execute("UPDATE job SET priority = priority WHERE id = ?",
                          (job_id,))
            updated.set()
            # The runner is frozen here, before anything commits.
            resume.wait(30)

        side = SideConnection.of(get_store())
        self.addCleanup(side.close)
        thread = threading.Thread(target=side.run,
                                  args=(renew_then_freeze,))
        thread.start()
        self.addCleanup(thread.join, 30)
        self.addCleanup(resume.set)
        self.assertTrue(updated.wait(30))
        other = psycopg2.connect(_dsn(self.db.uri))
        self.addCleanup(other.close)
        cursor = other.cursor()
        # NOWAIT: raises at once if the frozen side connection held it.
        cursor.execute("SELECT id FROM job WHERE id = %s FOR UPDATE NOWAIT",
                       (job_id,))
        self.assertEqual([(job_id,)], cursor.fetchall())
        other.rollback()
