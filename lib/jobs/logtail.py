"""`LogTail`: keep the last lines logged while a job runs.

Attached to the root logger around ``run()``, it keeps what any logger
said at or above its level, bounded to `max_chars` (the oldest lines go
first), so that ``jobs show`` and the job's OOPS report explain what the
job did.
"""

__all__ = ["LogTail"]

import collections
import logging

from jobs.scripts.logger import formatter, printable


class LogTail(logging.Handler):
    """Collects log lines, newest last, up to `max_chars` characters.

    :param level: the lowest level kept (default INFO).
    :param max_chars: the tail's size bound.
    """

    def __init__(self, level=logging.INFO, max_chars=8000):
        super().__init__(level)
        self.max_chars = max_chars
        self.lines = collections.deque()
        self.size = 0
        self.setFormatter(formatter())
        self._depth = 0
        self.collecting = True

    def start(self):
        """Start a new tail (empty): collect until `stop`.

        Between jobs a runner that stays attached collects nothing, so
        that its own lines are never formatted for a tail.
        """
        self.lines.clear()
        self.size = 0
        self.collecting = True

    def stop(self):
        """Stop collecting; `text` still returns what was kept."""
        self.collecting = False

    def begin(self):
        """A job starts: attach (unless attached already, as a runner is
        around its batch) and `start` a new tail; `end` when it ends."""
        # (`start` inline: this runs for every job.)
        self._depth += 1
        if self._depth == 1:
            self._attach()
        self.lines.clear()
        self.size = 0
        self.collecting = True

    def end(self):
        """The job ended: stop, detach what `begin` attached, and return
        the tail's `text`."""
        self.collecting = False
        self._depth -= 1
        if not self._depth:
            self._detach()
        return self.text() if self.lines else None

    def handle(self, record):
        # Between jobs (the runner's own lines): not even the lock.
        if not self.collecting:
            return False
        return super().handle(record)

    def emit(self, record):
        try:
            line = self.format(record)
        except Exception:
            line = "%s %s" % (record.levelname, record.msg)
        line = printable(line)
        self.lines.append(line)
        self.size += len(line) + 1
        while self.size > self.max_chars and len(self.lines) > 1:
            self.size -= len(self.lines.popleft()) + 1

    def text(self):
        """The tail, one record a line (None when nothing was logged)."""
        if not self.lines:
            return None
        return "\n".join(self.lines)[-self.max_chars:]

    def __enter__(self):
        """Attach to the root logger (nested uses attach once: a runner
        attaches for a whole batch, and each job's run only clears).

        Changing the root's level flushes every logger's level cache,
        which costs more than a short job: it is done once per batch.
        """
        self._depth += 1
        if self._depth == 1:
            self._attach()
        return self

    def _attach(self):
        root = logging.getLogger()
        root.addHandler(self)
        # Records below the root's level never reach any handler: let
        # the tail's level through while the job runs.
        self._saved_level = root.level
        if root.getEffectiveLevel() > self.level:
            root.setLevel(self.level)

    def __exit__(self, *exc_info):
        self._depth -= 1
        if not self._depth:
            self._detach()

    def _detach(self):
        root = logging.getLogger()
        root.removeHandler(self)
        if root.level != self._saved_level:
            root.setLevel(self._saved_level)
