"""`Budget`: how much more a run may claim (``--max-jobs``,
``--max-seconds``)."""

__all__ = ["Budget"]

import time


class Budget:
    """How much more a run may claim: a number of jobs and of seconds."""

    def __init__(self, max_jobs=None, max_seconds=None):
        self.max_jobs = max_jobs
        self.deadline = (None if max_seconds is None
                         else time.monotonic() + max_seconds)
        self.reached = False

    def allows(self, started, wanted):
        """How many of `wanted` more jobs may be claimed (0: stop)."""
        if self.deadline is not None and time.monotonic() >= self.deadline:
            self.reached = True
            return 0
        if self.max_jobs is not None:
            wanted = min(wanted, self.max_jobs - started)
            if wanted <= 0:
                self.reached = True
                return 0
        return wanted
