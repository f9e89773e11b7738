"""The `jobs` commands that run jobs: ``run`` (``cronscripts/run_jobs.py``)
and ``celery-worker``."""

__all__ = ["add_commands", "run_jobs"]

import argparse

from jobs.config import get_config
from jobs.errors import CommandError
from jobs.runoptions import at_least_one


def run_jobs(argv):
    """Run ``run_jobs.py`` with `argv` (its options and sections); return
    its exit status."""
    # Imported here: the runner (and the execution and process runner it
    # brings) is no part of the other commands' start-up (`jobs status`).
    from jobs.runner import JobCronScript

    class RunJobs(JobCronScript):
        """``jobs run``: `JobCronScript` with the sections from the
        command line, as ``cronscripts/run_jobs.py`` runs it; only its
        help names it ``jobs run``."""

        prog = "jobs run"

    try:
        script = RunJobs(test_args=list(argv), commandline_config=True,
                         name="run_jobs")
    except SystemExit as e:  # --help
        return e.code or 0
    return script.lock_and_run()


def cmd_celery_worker(options):
    # Imported here: Celery is an optional dependency (the celery extra).
    try:
        from jobs.celery.task import worker_main
    except ImportError as e:
        raise CommandError("Celery is not installed (pip install"
                           " 'jobs[celery]'): %s" % e) from None
    queues = [queue for value in options.queues or ()
              for queue in value.split(",") if queue]
    worker_main(queues or [get_config().celery.default_queue],
                concurrency=options.concurrency, loglevel=options.loglevel,
                hostname=options.hostname, pool=options.pool)


def add_commands(commands, parser_class):
    """Add ``run`` and ``celery-worker`` to `commands` (argparse).

    ``run``'s arguments are ``run_jobs.py``'s, parsed by it (see
    `jobs.cli.main`); this entry only lists the command.
    """
    run = commands.add_parser(
        "run", add_help=False,
        help="run the ready jobs of job SECTIONs (cronscripts/run_jobs.py;"
             " jobs run --help lists its options)")
    run.add_argument("args", nargs=argparse.REMAINDER)
    run.set_defaults(run=None)

    worker = commands.add_parser(
        "celery-worker", help="run a Celery worker for the jobs sent to"
        " QUEUEs (late acks, prefetch 1, the queues' time limits)")
    worker.add_argument("-Q", "--queues", action="append", metavar="QUEUE",
                        help="a queue (repeatable, or comma-separated;"
                        " default: [celery] default_queue)")
    worker.add_argument("-c", "--concurrency", type=at_least_one, default=1,
                        help="worker processes (default 1)")
    worker.add_argument("-l", "--loglevel", default="INFO")
    worker.add_argument("-n", "--hostname", help="the worker's node name")
    worker.add_argument("-P", "--pool", help="Celery pool (default prefork)")
    worker.set_defaults(run=cmd_celery_worker)
