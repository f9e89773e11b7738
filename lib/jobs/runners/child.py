"""The child process of `jobs.runners.process.ProcessJobRunner`.

A fresh interpreter (``spawn``): it loads the configuration, registers
the components, connects as the section's role only — the login role's
connection is never opened here — and runs each attempt the parent sends
through `jobs.execution.Execution`, which records the outcome. It answers
``(job type, completed, OOPS id)`` per attempt; the parent's heartbeat
keeps the lease alive meanwhile.

SIGUSR1 from the parent means "an operator cancelled the running job":
the attempt's flag is set, so the job's ``check_cancelled()`` raises.
"""

__all__ = ["child_main"]

import logging
import resource
import signal
import sys

from jobs.attempt import Attempt
from jobs.config import load, set_config
from jobs.database import connect, set_role
from jobs.errorlog import Redactor
from jobs.execution import Execution
from jobs.claiming import load_jobs
from jobs.outcome import COMPLETE
from jobs.registration import register_components
from jobs.scripts.logger import formatter
from jobs.sections import RunSettings, error_reporter_for, find_section


def child_main(connection, settings):
    """Set up, then run the attempts the parent sends until told to stop
    (None) or the pipe closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides
    logging.basicConfig(level=settings["log_level"], stream=sys.stderr)
    # The transaction package's DEBUG chatter is not the operator's.
    logging.getLogger("txn").setLevel(max(logging.INFO, settings["log_level"]))
    logger = logging.getLogger("run_jobs")
    config = load(settings["config_path"])
    for handler in logging.getLogger().handlers:
        handler.setFormatter(formatter(Redactor(config.redact).text))
    set_config(config)
    register_components(config)
    connect(config.database_uri, config.session_settings)
    set_role(settings["dbuser"])
    source = find_section(config, settings["section"],
                          settings["source_interface"]).source
    execution = Execution(
        logger, error_reporter_for(settings["section"], config),
        settings=RunSettings(log_level=settings["tail_level"],
                             log_tail_chars=settings["log_tail_chars"]))
    running = []

    def cancelled(signum, frame):
        for attempt in running:
            attempt.cancel_requested = True

    signal.signal(signal.SIGUSR1, cancelled)
    memory_limit = settings["memory_limit"]
    while True:
        try:
            message = connection.recv()
        except EOFError:
            return
        if message is None:
            return
        attempt = Attempt(*message)
        job_id = attempt.job_id
        # A malformed row comes back as an UnloadableJob, which fails.
        jobs = load_jobs(source, [job_id])
        if not jobs:
            connection.send(("?", False, None))
            continue
        job = jobs[0]
        job_type = type(job).__name__
        filed = len(execution.oops_ids)
        previous = resource.getrlimit(resource.RLIMIT_AS)
        if memory_limit:
            resource.setrlimit(resource.RLIMIT_AS, (memory_limit, previous[1]))
        running.append(attempt)
        try:
            outcome = execution.runAttempt(job, attempt)
        finally:
            running.remove(attempt)
            if memory_limit:
                resource.setrlimit(resource.RLIMIT_AS, previous)
        oops_id = (execution.oops_ids[-1]
                   if len(execution.oops_ids) > filed else None)
        connection.send((job_type, outcome is COMPLETE, oops_id,
                         outcome.name))
        del job, jobs
