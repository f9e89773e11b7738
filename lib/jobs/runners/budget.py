"""`Budget`: when a run must stop claiming (``--max-jobs``, ``--max-seconds``)."""

__all__ = ["Budget"]

import time


class Budget:
    """A limit on the jobs a run starts and on its duration.

    :param max_jobs: jobs to start at most (None: no limit).
    :param max_seconds: seconds after which no job is claimed (None: no
        limit).
    """

    def __init__(self, max_jobs=None, max_seconds=None):
        self.max_jobs = max_jobs
        self.max_seconds = max_seconds
        self.started_at = time.monotonic()
        self.reached = False

    def allows(self, started, wanted):
        """How many of `wanted` more jobs may be claimed, `started` having
        been started; 0 (and `reached` set) when the budget is spent."""
        left = wanted
        if self.max_jobs is not None:
            left = min(left, self.max_jobs - started)
        if (self.max_seconds is not None
                and time.monotonic() - self.started_at >= self.max_seconds):
            left = 0
        if left <= 0:
            self.reached = True
            return 0
        return left
