"""An idle ``--worker --processes N`` (issue 14 item 2): it starts no
child until there is a job, and then keeps its children from one pass to
the next instead of spawning N interpreters at every poll. Its idle CPU
is measured by ``benchmarks/scale.py --scenarios idle-processes``."""

import os

import transaction

from jobs.interfaces.job import JobStatus
from jobs.testing.testcase import DatabaseTestCase, on_each_database
from tests.scripts.test_worker import LONG_POLL, WorkerMixin


def descendants(root):
    """The pids of the live processes below `root`."""
    parents = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open("/proc/%s/stat" % name) as f:
                    parents[int(name)] = int(
                        f.read().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
    found, frontier = set(), [root]
    while frontier:
        parent = frontier.pop()
        for pid, ppid in parents.items():
            if ppid == parent and pid not in found:
                found.add(pid)
                frontier.append(pid)
    return found


@on_each_database
class TestIdleProcessWorker(WorkerMixin, DatabaseTestCase):

    config_extra = LONG_POLL.replace("poll_interval: 300",
                                     "poll_interval: 0.05")

    def run_and_wait(self, count):
        jobs = [self.factory.makeDoFooJob() for _ in range(count)]
        transaction.commit()
        self.wait_for(lambda: all(self.status_of(job.job_id)
                                  is JobStatus.COMPLETED for job in jobs),
                      "the jobs")

    def test_an_idle_worker_keeps_its_children_between_passes(self):
        process, log = self.start_worker("--processes", "2",
                                         "do_foo_worker")
        self.run_and_wait(4)
        children = descendants(process.pid)
        self.assertTrue(children, self.log_text(log))
        # Another job: at least one more pass (and many idle polls of
        # 50 ms) have gone by; it ran on the same children.
        self.run_and_wait(1)
        self.assertEqual(children, descendants(process.pid))
        self.assertIsNone(process.poll(), self.log_text(log))

    def test_a_worker_with_no_job_yet_starts_no_child(self):
        process, log = self.start_worker("--processes", "2",
                                         "do_foo_worker")
        # Its row in the worker table: it is up and polling.
        self.wait_for(lambda: self.worker_rows() > 0, "the worker's row")
        self.assertEqual(set(), descendants(process.pid),
                         self.log_text(log))

    def worker_rows(self):
        count = self.store.execute("SELECT count(*) FROM worker").get_one()[0]
        transaction.abort()
        return count
