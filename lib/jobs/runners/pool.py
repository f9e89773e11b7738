"""`ChildPool`: the child processes of a process runner.

Children are started with the ``spawn`` method (a fresh interpreter:
nothing — no database connection, no Storm store — crosses a fork) only
when a claimed job needs one, and kept until the pool stops: an idle
worker (``--worker --processes N``) holds idle children and spends no CPU
starting new ones at every poll.
"""

__all__ = ["Child", "ChildPool"]

import multiprocessing

from jobs.database.confine import without_login_variables
from jobs.runners.child import child_main


class Child:
    """One child process and the attempt it runs (if any).

    :ivar deadline: the monotonic time past which the parent kills it (the
        child stops its job itself first, at its ``max_runtime``).
    :ivar cancel_noticed: when the parent told the child of a cancel.
    """

    def __init__(self, context, settings):
        self.connection, child_end = multiprocessing.Pipe()
        self.process = context.Process(
            target=child_main, args=(child_end, settings), daemon=True)
        with without_login_variables(settings["dbuser"]):
            self.process.start()
        child_end.close()
        self.attempt = None
        self.deadline = None
        self.cancel_noticed = None

    @property
    def idle(self):
        return self.attempt is None

    def send(self, attempt, deadline):
        self.attempt, self.deadline = attempt, deadline
        attempt.start()
        self.connection.send((attempt.job_id, attempt.number,
                              attempt.max_retries, attempt.lease_seconds,
                              attempt.cancel_requested, attempt.lost,
                              attempt.start_marked, attempt.lost_runner))

    def done(self):
        self.attempt = self.deadline = self.cancel_noticed = None

    def stop(self, kill=False):
        if kill:
            self.process.kill()
        else:
            try:
                self.connection.send(None)
            except (BrokenPipeError, OSError):
                pass
        self.process.join(30)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(30)
        self.connection.close()


class ChildPool:
    """Up to `size` children for one section, started when needed.

    :param settings: what each child needs to set itself up (see
        `jobs.runners.child.child_main`).
    :param logger: told once when the children are first started.
    """

    def __init__(self, settings, size, logger):
        self.settings = settings
        self.size = max(1, size)
        self.logger = logger
        self.children = []
        self.context = multiprocessing.get_context("spawn")

    def free(self):
        """How many more attempts the pool can take now."""
        return self.size - len(self.busy())

    def busy(self):
        return [child for child in self.children if not child.idle]

    def take(self, count):
        """`count` idle children, starting new ones as needed."""
        idle = [child for child in self.children if child.idle][:count]
        if len(idle) < count and not self.children:
            self.logger.info("Running through %d child processes.",
                             self.size)
        while len(idle) < count and len(self.children) < self.size:
            child = Child(self.context, self.settings)
            self.children.append(child)
            idle.append(child)
        return idle

    def replace(self, child):
        """Stop `child` (killed) and forget it; a new one starts when
        needed."""
        child.stop(kill=True)
        self.children.remove(child)

    def stop(self):
        """Stop every child (the busy ones are killed)."""
        for child in self.children:
            child.stop(kill=not child.idle)
        self.children = []
