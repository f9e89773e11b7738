"""What jobs recorded of their own runs (the ``record`` behaviour of the
reference job writes one ``job_execution`` row in its own transaction)."""

__all__ = ["assert_each_ran_once"]

import transaction


def assert_each_ran_once(test, store, job_ids):
    """Assert that each of `job_ids`, and no other job, has exactly one
    committed execution; return the pids of the processes that ran them."""
    executions = dict(store.execute(
        "SELECT job, count(*) FROM job_execution GROUP BY job"))
    test.assertEqual(set(job_ids), set(executions))
    test.assertEqual({1}, set(executions.values()))
    pids = {row[0] for row in store.execute(
        "SELECT DISTINCT pid FROM job_execution")}
    transaction.abort()
    return pids
