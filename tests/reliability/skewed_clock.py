"""Run a script on a host whose clock is wrong by a number of seconds.

    python -m tests.reliability.skewed_clock SECONDS SCRIPT [ARG ...]

``time.time`` and ``time.time_ns`` are shifted for the whole process
(log lines are stamped with the shifted time, which shows the shift
took); ``datetime.now`` / ``utcnow`` / ``today`` for every module of
``jobs`` (imported first, then patched: replacing ``datetime.datetime``
itself would break the type checks of Storm and bson, which compare
with the real class). PostgreSQL's clock is untouched: it runs elsewhere.
"""

import datetime
import runpy
import sys
import time


def shift_clock(seconds):
    """Move this process's wall clock `seconds` (may be negative)."""
    real_time, real_time_ns = time.time, time.time_ns
    delta = datetime.timedelta(seconds=seconds)
    time.time = lambda: real_time() + seconds
    time.time_ns = lambda: real_time_ns() + int(seconds * 10 ** 9)
    real_datetime = datetime.datetime

    class SkewedDateTime(real_datetime):
        @classmethod
        def now(cls, tz=None):
            return real_datetime.now(tz) + delta

        @classmethod
        def utcnow(cls):
            return real_datetime.utcnow() + delta

        @classmethod
        def today(cls):
            return real_datetime.today() + delta

    # What run_jobs.py loads, then every jobs module that took the class.
    import jobs.cli  # noqa: F401
    import jobs.runner  # noqa: F401
    for name, module in list(sys.modules.items()):
        if (name == "jobs" or name.startswith("jobs.")) and getattr(
                module, "datetime", None) is real_datetime:
            module.datetime = SkewedDateTime

if __name__ == "__main__":
    shift_clock(float(sys.argv[1]))
    sys.argv = sys.argv[2:]
    runpy.run_path(sys.argv[0], run_name="__main__")
