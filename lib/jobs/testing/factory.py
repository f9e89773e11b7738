"""A small factory for test objects: unique values, foos, jobs."""

from __future__ import annotations

__all__ = ["Factory"]

from typing import Any, Optional

from jobs.database import get_store
from jobs.interfaces.job import JobStatus
from jobs.model.job import Job
from jobs.testing.foojob import DoFooJob, Foo, FooJobDerived


def make_many_foo_jobs(store: Any, foo: Foo, count: int, status: int = 0,
                       **behaviour: Any) -> list[int]:
    """Insert `count` DoFooJobs about `foo` with two statements.

    For tests and benchmarks that need many jobs fast. Leaves the
    transaction open.

    :return: the new job ids (list), oldest first.
    """
    import json
    if count <= 0:
        return []
    store.flush()
    before = store.execute("SELECT coalesce(max(id), 0) FROM job").get_one()[0]
    store.execute(
        "WITH RECURSIVE g(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM g"
        " WHERE x < ?) INSERT INTO job (status) SELECT ? FROM g",
        (count, status))
    store.execute(
        "INSERT INTO foo_job (job, foo, job_type, json_data)"
        " SELECT id, ?, ?, ? FROM job WHERE id > ?",
        (foo.id, DoFooJob.class_job_type.value, json.dumps(behaviour),
         before))
    return [row[0] for row in store.execute(
        "SELECT id FROM job WHERE id > ? ORDER BY id", (before,))]


class Factory:
    """Makes objects in the ``main`` store; leaves the transaction open.

    :param test: the testtools test, for its unique values.
    """

    def __init__(self, test: Any):
        self.test = test

    def getUniqueString(self, prefix: Optional[str] = None) -> str:
        """A string no other call in the test returns."""
        return self.test.getUniqueString(prefix)

    def makeFoo(self, name: Optional[str] = None) -> Foo:
        """A new `Foo`."""
        foo = Foo(name or self.getUniqueString("foo"))
        store = get_store()
        store.add(foo)
        store.flush()
        return foo

    def makeJob(self, status: Any = JobStatus.WAITING,
                **columns: Any) -> Job:
        """A bare `Job` row in `status` (set directly, for set-up only)."""
        job = Job()
        job.status = status
        for name, value in columns.items():
            setattr(job, name, value)
        store = get_store()
        store.add(job)
        store.flush()
        return job

    def makeManyDoFooJobs(self, count: int, **behaviour: Any) -> list[int]:
        """`count` WAITING DoFooJobs about one new foo, made in bulk SQL.

        :return: their job ids (list), oldest first.
        """
        return make_many_foo_jobs(get_store(), self.makeFoo(), count,
                                  **behaviour)

    def makeDoFooJob(self, foo: Optional[Foo] = None,
                     job_class: type[FooJobDerived] = DoFooJob,
                     **behaviour: Any) -> FooJobDerived:
        """A new WAITING `DoFooJob` (see `FooJobDerived.create`)."""
        return job_class.create(foo or self.makeFoo(), **behaviour)
