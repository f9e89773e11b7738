"""`Fleet`: real runner processes over one database, which a reliability
test starts, keeps going, kills and stops.

Each runner has a slot: a cron slot starts ``run_jobs.py SECTION`` again
whenever the previous run ends (what cron does, only sooner); a worker
slot runs ``run_jobs.py --worker SECTION`` and is started again only if
it dies. Slot *i* serves section ``reliable_i`` (see `sections`): all the
sections name the same job source, but each has its own lock file, as
each of several hosts would.
"""

__all__ = ["Fleet", "Runner", "STARTED", "scaled", "sections", "wait_until"]

import os
import signal
import subprocess
import sys
import time

import fixtures

from jobs.testing.script import ROOT

RUN_JOBS = os.path.join(ROOT, "cronscripts", "run_jobs.py")
SCALE_VARIABLE = "JOBS_RELIABILITY_SCALE"
STARTED = "--- run started"


def scaled(ci, full):
    """`full` when ``JOBS_RELIABILITY_SCALE=full``, else `ci`."""
    return full if os.environ.get(SCALE_VARIABLE) == "full" else ci


def section_name(slot):
    return "reliable_%d" % slot


def sections(settings):
    """Config text for sections ``reliable_0`` ... over `DoFooJob`.

    :param settings: one dict of section keys per slot.
    """
    text = []
    for slot, values in enumerate(settings):
        text.append("[%s]\ndbuser: dofoo\nsource_interface:"
                    " jobs.testing.foojob.IDoFooJobSource\n" % section_name(slot))
        text.extend("%s: %s\n" % item for item in sorted(values.items()))
        text.append("\n")
    return "".join(text)


def wait_until(predicate, timeout, what, meanwhile=None, details=None):
    """Poll `predicate` (every 0.1 s, calling `meanwhile`) until it is
    true.

    :raises AssertionError: after `timeout` seconds, naming `what` and
        what `details()` returns.
    """
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("Timed out after %d s waiting for %s.\n%s"
                                 % (timeout, what, details() if details
                                    else ""))
        if meanwhile is not None:
            meanwhile()
        time.sleep(0.1)


class Runner:
    """One slot of the fleet, and the runs it has made.

    :ivar runs: ``(pid, exit status, killed)`` of each ended run; a run
        killed by the fleet has status -9 and killed True.
    """

    def __init__(self, slot, worker, log_path, args=(), argv_prefix=()):
        self.slot = slot
        self.worker = worker
        self.log_path = log_path
        self.argv = [*argv_prefix, RUN_JOBS, *(["--worker"] if worker else []),
                     *args, section_name(slot)]
        self.process = None
        self.runs = []
        self.wanted = True
        self._terminated = False

    @property
    def mode(self):
        return "worker" if self.worker else "cron"

    def start(self):
        with open(self.log_path, "a") as log:
            # Until the run logs, its last line is this, not the previous
            # run's.
            log.write("%s\n" % STARTED)
            log.flush()
            self.process = subprocess.Popen(
                [sys.executable, *self.argv], stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=log, cwd=ROOT)

    def poll(self):
        """Note an ended run; start the next one if the slot is wanted."""
        if self.process is not None and self.process.poll() is not None:
            self.runs.append((self.process.pid, self.process.returncode,
                              False))
            self.process = None
        if self.process is None and self.wanted:
            self.start()

    def kill(self):
        """SIGKILL the current run; return the last line it logged."""
        process = self.process
        process.kill()
        process.wait(60)
        self.runs.append((process.pid, process.returncode, True))
        self.process = None
        return self.last_line()

    def terminate(self):
        """Start no more runs; SIGTERM a worker (once: a second SIGTERM
        while Python shuts down would kill it).

        A worker just started (again) is first given the time to log its
        first line: before that it has no SIGTERM handler, and the signal
        would kill it (status -15) instead of stopping it.
        """
        self.wanted = False
        if self.worker and self.process is not None and not self._terminated:
            wait_until(lambda: self.process.poll() is not None
                       or self.last_line() != STARTED, 60,
                       "worker %d to start" % self.slot)
            self._terminated = True
            self.process.send_signal(signal.SIGTERM)

    def stop(self, timeout=120):
        """`terminate`, then wait for the run to end."""
        self.terminate()
        if self.process is not None:
            self.process.wait(timeout)
            self.poll()

    def last_line(self):
        try:
            with open(self.log_path, "rb") as log:
                log.seek(max(0, os.path.getsize(self.log_path) - 4096))
                lines = log.read().decode("utf-8", "replace").splitlines()
        except OSError:
            return ""
        return lines[-1] if lines else ""

    def log_text(self):
        with open(self.log_path, encoding="utf-8", errors="replace") as log:
            return log.read()

    def unexpected_exits(self):
        """The runs that ended on their own with a non-zero status."""
        return [(pid, code) for pid, code, killed in self.runs
                if code != 0 and not killed]


class Fleet(fixtures.Fixture):
    """Runners over the current ``JOBS_CONFIG`` and ``JOBS_DATABASE_URI``;
    every process is killed at clean-up, whatever happened.

    :param modes: one entry per slot, ``"cron"`` or ``"worker"``.
    :param args: more ``run_jobs.py`` options, per slot (a list of
        lists) or for all.
    """

    def __init__(self, modes, args=(), argv_prefix=()):
        super().__init__()
        self.modes = modes
        self.args = args
        self.argv_prefix = argv_prefix

    def _setUp(self):
        self.folder = self.useFixture(fixtures.TempDir()).path
        self.runners = []
        for slot, mode in enumerate(self.modes):
            args = (self.args[slot] if self.args and isinstance(
                self.args[0], (list, tuple)) else self.args)
            self.runners.append(Runner(
                slot, mode == "worker",
                os.path.join(self.folder, "slot-%d.log" % slot), args,
                self.argv_prefix))
        self.addCleanup(self._kill_all)

    def _kill_all(self):
        for runner in self.runners:
            runner.wanted = False
            if runner.process is not None and runner.process.poll() is None:
                runner.process.kill()
                runner.process.wait(60)

    def start(self):
        for runner in self.runners:
            runner.start()

    def poll(self):
        for runner in self.runners:
            runner.poll()

    def run_for(self, seconds):
        """Keep the slots going for `seconds`."""
        deadline = time.monotonic() + seconds
        while True:
            self.poll()
            left = deadline - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(0.05, left))

    def run_until(self, predicate, timeout, what):
        """Keep the slots going until `predicate()` is true.

        :raises AssertionError: after `timeout` seconds, naming `what`
            and the end of each slot's log.
        """
        wait_until(predicate, timeout, what, self.poll, self.log_tails)

    def stop(self):
        """Stop every slot (workers get SIGTERM); return the runs that
        ended on their own with a non-zero status, per slot."""
        for runner in self.runners:
            runner.terminate()
        for runner in self.runners:
            runner.stop()
        return {runner.slot: runner.unexpected_exits()
                for runner in self.runners if runner.unexpected_exits()}

    def log_tails(self, chars=3000):
        return "\n".join("--- slot %d (%s):\n%s" % (
            runner.slot, runner.mode, runner.log_text()[-chars:])
            for runner in self.runners)
