"""The crash driver: runners ``kill -9``ed at random moments, then left
to finish; afterwards no job may be lost, doubled or left RUNNING.

Four slots (two workers, two cron slots; see `Fleet`) serve one queue of
jobs that sleep inside ``run()`` (most), finish at once, or raise (their
runner writes an OOPS report); most record their execution in the
database, a fifth send no SQL at all. Leases last 2 s, so the jobs of a killed
runner are reclaimed soon. At random intervals a random runner is killed
and its slot started again (victims are drawn among the runners past
their start-up, if any); whenever the queue runs dry, another wave of
jobs is added, so that kills land in busy runners. Each kill is classed
by the victim's last log line (starting up, between jobs — claiming —,
or inside a job: running, completing or failing it and writing its OOPS).

Replay a run with its seed::

    python -m tests.reliability.crash --kills 100 --seed 1234

(``JOBS_TEST_DB_PREFIX`` names its database on the test server, as for
the tests.)
"""

__all__ = ["CrashDriver", "SECTIONS"]

import argparse
import random
import sys
import time
from collections import Counter

import transaction

from jobs.database import get_store
from jobs.testing.factory import make_many_foo_jobs
from jobs.testing.foojob import Foo
from tests.reliability.fleet import STARTED, Fleet, sections
from tests.reliability.ledger import Ledger

MODES = ["worker", "cron", "worker", "cron"]
SECTIONS = sections([{"batch_size": 5, "lease_seconds": 2,
                      "poll_interval": 0.5, "grace_period": 5}] * len(MODES))
# (share of a wave, json_data): what the jobs do. Those that do not
# ``record`` send no SQL: their outcome and the next claim (or start) go
# in one statement that commits by itself (`jobs.model.records.Completion`).
BEHAVIOURS = [
    (0.5, {"record": True, "sleep": 0.02}),
    (0.2, {"record": True}),
    (0.1, {"record": True, "raise_": "error"}),
    (0.1, {"sleep": 0.02}),
    (0.1, {}),
]


def kill_window(last_line):
    """Where a runner was when killed, from the last line it logged."""
    if last_line == STARTED:
        return "starting up (before its first log line)"
    words = last_line.split(None, 3)
    message = words[3] if len(words) > 3 else ""
    if message.startswith("Running "):
        return "inside a job (run, complete or fail, OOPS)"
    if message.startswith(("Completed ", "Job resulted in OOPS",
                           "Ran ", "Scheduling", "Could not acquire")):
        return "between jobs (claiming)"
    if "left RUNNING by a lost runner" in message:
        return "reclaiming an orphan"
    if message.startswith(("No jobs to run", "Listening for new jobs")):
        return "idle (queue empty)"
    return "starting up (connected)"


class CrashDriver:
    """Runs one crash run over the current configuration and database.

    :param kills: how many runners to kill.
    :param seed: seeds every random choice (intervals, victims).
    :param wave: jobs added whenever the queue is empty.
    :param out: where progress lines go (a callable taking a string).
    """

    def __init__(self, kills, seed, wave=200, error_dir=None, out=print):
        self.kills = kills
        self.seed = seed
        self.wave = wave
        self.error_dir = error_dir
        self.out = out

    def add_wave(self, store):
        foo = Foo("crash")
        store.add(foo)
        for share, behaviour in BEHAVIOURS:
            make_many_foo_jobs(store, foo, int(self.wave * share), **behaviour)
        # Enough attempts that every kill can be survived: a job fails
        # only when its own run() raises.
        store.execute("UPDATE job SET max_retries = 1000"
                      " WHERE max_retries = 0")
        transaction.commit()

    def run(self, fleet):
        """Kill, then drain; return a `CrashReport`."""
        self.out("crash run: seed %d, %d kills" % (self.seed, self.kills))
        rng = random.Random(self.seed)
        store = get_store()
        ledger = Ledger(store)
        started = time.monotonic()
        windows = Counter()
        waves = 0
        fleet.start()
        while sum(windows.values()) < self.kills:
            if ledger.pending() == 0:
                self.add_wave(store)
                waves += 1
            fleet.run_for(rng.uniform(0.1, 1.0))
            # A run spends its first second importing: prefer victims
            # that got past it, so that most kills land in the work.
            running = [runner for runner in fleet.runners
                       if runner.process is not None]
            busy = [runner for runner in running
                    if runner.last_line() != STARTED]
            if not running:
                continue
            victim = rng.choice(busy or running)
            windows[kill_window(victim.kill())] += 1
            victim.start()
        self.out("%d kills in %.0f s; draining" % (
            self.kills, time.monotonic() - started))
        fleet.run_until(lambda: ledger.pending() == 0, timeout=300,
                        what="the survivors to finish every job")
        unexpected = fleet.stop()
        problems, summary = ledger.audit()
        if unexpected:
            problems.append("runs that exited non-zero without being"
                            " killed: %s" % unexpected)
        failed_without_oops = None
        if self.error_dir is not None:
            # A report is written before FAILED is committed: a kill
            # between the two leaves a duplicate, never a missing report.
            failed_without_oops = ledger.failed_without_oops(self.error_dir)
            if failed_without_oops:
                problems.append("FAILED jobs without an OOPS report: %s"
                                % sorted(failed_without_oops))
        report = CrashReport(self.seed, self.kills, waves, windows,
                             problems, summary, time.monotonic() - started)
        report.failed_without_oops = failed_without_oops
        self.out(report.text())
        return report


class CrashReport:
    """What one crash run did and found."""

    failed_without_oops = None

    def __init__(self, seed, kills, waves, windows, problems, summary,
                 seconds):
        self.seed = seed
        self.kills = kills
        self.waves = waves
        self.windows = windows
        self.problems = problems
        self.summary = summary
        self.seconds = seconds

    def text(self):
        lines = ["seed %d: %d kills, %d waves of jobs, %.0f s"
                 % (self.seed, self.kills, self.waves, self.seconds)]
        lines += ["  killed %s: %d" % item
                  for item in sorted(self.windows.items())]
        lines += ["  %s: %s" % item for item in self.summary.items()]
        if self.failed_without_oops is not None:
            lines.append("  FAILED jobs without an OOPS report: %d"
                         % len(self.failed_without_oops))
        lines += ["PROBLEM: %s" % problem for problem in self.problems]
        lines.append("held" if not self.problems else
                     "DID NOT HOLD (replay with --seed %d)" % self.seed)
        return "\n".join(lines)


def main(argv=None):
    """``python -m tests.reliability.crash``: one crash run on the test
    PostgreSQL server; exit 1 when something did not hold."""
    from jobs.testing.fixtures import (ComponentsFixture, ConfigFixture,
                                       DatabaseFixture)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=100)
    parser.add_argument("--seed", type=int,
                        default=random.SystemRandom().randrange(10 ** 6))
    parser.add_argument("--wave", type=int, default=200,
                        help="Jobs added whenever the queue is empty.")
    options = parser.parse_args(argv)
    with ConfigFixture(SECTIONS) as config, ComponentsFixture(), \
            DatabaseFixture("postgresql"), Fleet(MODES) as fleet:
        report = CrashDriver(options.kills, options.seed, options.wave,
                             config.error_dir).run(fleet)
    return 1 if report.problems else 0


if __name__ == "__main__":
    sys.exit(main())
