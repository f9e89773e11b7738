"""A process of the unique-key race (`test_enqueue`): each round it waits
at the barrier with the other process, then creates the round's job."""

import os

import transaction


def enqueue_rounds(config_path, database_uri, rounds, barrier, results):
    """Create ``add`` jobs keyed ``round-<n>`` for `rounds` rounds; put
    the job ids got back (one per round) on `results`."""
    os.environ["JOBS_CONFIG"] = config_path
    os.environ["JOBS_DATABASE_URI"] = database_uri
    import jobs
    from jobs.testing import tasks
    jobs.setup()
    ids = []
    for number in range(rounds):
        barrier.wait(timeout=60)
        job = tasks.add.apply_async(args=(number, number),
                                    unique_key="round-%d" % number)
        ids.append(job.job_id)
        transaction.commit()
    results.put(ids)
