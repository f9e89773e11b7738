"""The child process of `jobs.runners.process.ProcessJobRunner`.

A fresh interpreter (``spawn``): it loads the configuration, registers
the components, connects as the section's role only — the login role's
connection is never opened here — and runs each attempt the parent sends
through `jobs.execution.Execution`, which records the outcome. It answers
``(job type, outcome name, OOPS id)`` per attempt; the parent's heartbeat
keeps the lease alive meanwhile.

The child enforces its job's limits itself, so that a parent that is
frozen or dead does not extend them: ``max_runtime`` as a wall-clock alarm
and a CPU-time limit (the job then raises ``TimeoutError("Job ran too
long.")``, an OOPS), ``memory_limit`` as RLIMIT_AS. The parent kills a
child whose job does not stop a few seconds later. A child dies with its
parent (``PR_SET_PDEATHSIG``): a parent that exits at the end of its grace
period, or is killed, leaves no child running a job on a dead lease.

SIGUSR1 from the parent means "an operator cancelled the running job":
the attempt's flag is set, so the job's ``check_cancelled()`` raises. A
lost database connection is answered with `LOST`: the parent records the
lost attempt (retried while attempts are left).
"""

__all__ = ["LOST", "TIMEOUT_MESSAGE", "child_main"]

import contextlib
import ctypes
import logging
import multiprocessing
import os
import resource
import signal
import sys

import transaction
from storm.exceptions import DisconnectionError

from jobs.attempt import Attempt
from jobs.claiming import load_jobs
from jobs.config import load, set_config
from jobs.database import connect, get_store, statement_timeout
from jobs.errorlog import Redactor
from jobs.execution import Execution
from jobs.model import claims
from jobs.registration import register_components
from jobs.scripts.logger import formatter
from jobs.sections import RunSettings, error_reporter_for, find_section
from jobs.stopping import exit_process

# What the child answers when its database connection was lost mid-job.
LOST = "lost"
TIMEOUT_MESSAGE = "Job ran too long."
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _too_long(signum, frame):
    raise TimeoutError(TIMEOUT_MESSAGE)


class ChildExecution(Execution):
    """Runs the parent's attempts within the section's limits."""

    def __init__(self, logger, reporter, settings, max_runtime,
                 memory_limit):
        super().__init__(logger, reporter, settings=settings)
        self.max_runtime = max_runtime
        self.memory_limit = memory_limit
        signal.signal(signal.SIGALRM, _too_long)
        signal.signal(signal.SIGXCPU, _too_long)

    def _before_start(self, job, attempt):
        """Also make the job's claim name this child's session, which is
        about to hold the job's locks (committed before the job runs)."""
        outcome = super()._before_start(job, attempt)
        if outcome is None and claims.hold_on_session(
                get_store(), attempt.job_id, attempt.number):
            transaction.commit()
        return outcome

    @contextlib.contextmanager
    def limits(self, attempt):
        """Around the job's code only: the alarm must not go off while
        the outcome is being recorded."""
        previous_as = resource.getrlimit(resource.RLIMIT_AS)
        previous_cpu = resource.getrlimit(resource.RLIMIT_CPU)
        if self.memory_limit:
            resource.setrlimit(resource.RLIMIT_AS,
                               (self.memory_limit, previous_as[1]))
        if self.max_runtime:
            # The CPU limit is cumulative: this job's share starts now.
            used = resource.getrusage(resource.RUSAGE_SELF)
            soft = int(used.ru_utime + used.ru_stime + self.max_runtime) + 1
            if previous_cpu[1] == resource.RLIM_INFINITY or \
                    soft < previous_cpu[1]:
                resource.setrlimit(resource.RLIMIT_CPU,
                                   (soft, previous_cpu[1]))
            signal.setitimer(signal.ITIMER_REAL, self.max_runtime)
        try:
            yield
        finally:
            if self.max_runtime:
                signal.setitimer(signal.ITIMER_REAL, 0)
                resource.setrlimit(resource.RLIMIT_CPU, previous_cpu)
            if self.memory_limit:
                resource.setrlimit(resource.RLIMIT_AS, previous_as)


def _die_with_parent():
    """Be killed when the parent dies (Linux): a parent that exits at
    the end of its grace period, or is killed, takes its children's
    attempts with it, as an in-process runner takes its job — a child
    left behind would run on, unwatched, on a lease no one renews."""
    parent = multiprocessing.parent_process()
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        return  # not Linux: the parent kills its children when it can
    if parent is not None and os.getppid() != parent.pid:
        os._exit(1)  # the parent died before the line above


def child_main(connection, settings):
    """Set up, then run the attempts the parent sends until told to stop
    (None) or the pipe closes."""
    running = []

    def cancelled(signum, frame):
        for attempt in running:
            attempt.cancel_requested = True

    # First: SIGUSR1's default action would kill a child still setting up.
    signal.signal(signal.SIGUSR1, cancelled)
    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    logging.basicConfig(level=settings["log_level"], stream=sys.stderr)
    # The transaction package's DEBUG chatter is not the operator's.
    logging.getLogger("txn").setLevel(max(logging.INFO, settings["log_level"]))
    logger = logging.getLogger("run_jobs")
    config = load(settings["config_path"])
    for handler in logging.getLogger().handlers:
        handler.setFormatter(formatter(Redactor(config.redact).text))
    # The section's role only, from the start: no login store, URI or
    # password for job code to find (jobs.database.confine).
    config.confine_to(settings["database_uri"])
    set_config(config)
    register_components(config)
    connect(config.database_uri, config.session_settings,
            config.prepared_statements)
    source = find_section(config, settings["section"],
                          settings["source_interface"]).source
    execution = ChildExecution(
        logger, error_reporter_for(settings["section"], config),
        RunSettings(log_level=settings["tail_level"],
                    log_tail_chars=settings["log_tail_chars"]),
        settings["max_runtime"], settings["memory_limit"])
    execution.source = source
    with statement_timeout(settings["statement_timeout"]):
        _serve(connection, source, execution, running)
    # Not the interpreter's exit, which waits for ever on any non-daemon
    # thread job code left behind (and the parent, stopping, would wait
    # on this child until its pool's patience runs out).
    exit_process(0, settings["grace_period"], logger)


def _serve(connection, source, execution, running):
    while True:
        try:
            message = connection.recv()
        except EOFError:
            return
        if message is None:
            return
        attempt = Attempt(*message[:-1])
        attempt.lost_runner = message[-1]
        # A malformed row comes back as an UnloadableJob, which fails.
        try:
            jobs = load_jobs(source, [attempt.job_id])
        except DisconnectionError:
            transaction.abort()
            connection.send(("?", LOST, None))
            continue
        if not jobs:
            connection.send(("?", "gone", None))
            continue
        job = jobs[0]
        job_type = type(job).__name__
        filed = execution.oops_filed
        running.append(attempt)
        try:
            outcome = execution.runAttempt(job, attempt).name
        except DisconnectionError:
            transaction.abort()  # Storm reconnects at the next statement
            outcome = LOST
        finally:
            running.remove(attempt)
        oops_id = (execution.oops_ids[-1]
                   if execution.oops_filed > filed else None)
        connection.send((job_type, outcome, oops_id))
        del job, jobs
