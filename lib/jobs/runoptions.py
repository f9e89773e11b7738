"""The command line of ``cronscripts/run_jobs.py`` (``jobs run``): its
usage, help text and options (`jobs.cronscript.JobCronScript` reads
them)."""

__all__ = ["DESCRIPTION", "EPILOG", "USAGE", "add_run_options",
           "at_least_one", "positive_seconds"]

import argparse
import math

USAGE = ("%(prog)s [options] SECTION [SECTION ...]\n"
         "       %(prog)s [options] --schedules [SECTION ...]")
DESCRIPTION = (
    "Run the ready jobs of each job SECTION of the configuration, one\n"
    "section after another, each under its own lock file and its own\n"
    "database role (dbuser; ignored on SQLite), then exit. With\n"
    "--worker, keep running: wake on NOTIFY (PostgreSQL) or poll.\n"
    "With --schedules, first enqueue the due ticks of the periodic\n"
    "schedules (with no SECTION: only that); workers do it at each pass.")
EPILOG = (
    "Exit status: 0 when every section ran (a job's failure is an OOPS\n"
    "report, not an exit status); 1 when a section's lock file is\n"
    "held by another run; 2 for a usage error (one line), or when a\n"
    "section is unknown, its source_interface cannot be imported, no utility\n"
    "provides it, or the database connection was lost during its run\n"
    "(the other sections still run). A worker exits 0 after SIGTERM or\n"
    "SIGINT once its running job has finished.\n\n"
    "Every run has a row in the worker table while it runs (jobs\n"
    "workers); jobs cancel --worker ID stops it: a worker as after\n"
    "SIGTERM, a cron run once its running job has finished.\n\n"
    "Configuration: JOBS_CONFIG names the instance (default\n"
    "development); JOBS_DATABASE_URI overrides [database] uri.")


def at_least_one(text):
    """An argparse type: a whole number, 1 or more."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            "%r is not a whole number." % text) from None
    if value < 1:
        raise argparse.ArgumentTypeError("%d is below 1." % value)
    return value


def positive_seconds(text):
    """An argparse type: a finite number of seconds, more than 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            "%r is not a number of seconds." % text) from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(
            "%r is not more than 0 seconds." % text)
    return value


def add_run_options(parser, commandline_config):
    """Add run_jobs.py's own options to `parser` (argparse).

    :param commandline_config: the sections are given on the command
        line (otherwise the script's subclass names its one section).
    """
    if commandline_config:
        parser.add_argument(
            "sections", nargs="*", metavar="SECTION",
            help="A job section of the configuration.")
    parser.add_argument(
        "--worker", action="store_true",
        help="Keep running: serve the sections until SIGTERM/SIGINT.")
    parser.add_argument(
        "--max-jobs", type=at_least_one, metavar="N",
        help="Stop claiming after N jobs per section (cron mode).")
    parser.add_argument(
        "--max-seconds", type=positive_seconds, metavar="T",
        help="Stop claiming after T seconds per section (cron mode).")
    parser.add_argument(
        "--batch-size", type=at_least_one, metavar="N",
        help="Claim up to N jobs per statement (default: the section's"
             " batch_size).")
    parser.add_argument(
        "--celery-sweep", action="store_true",
        help="Run no job: send again to Celery the ready jobs of each"
             " (celery_dispatch) section that no worker claimed within"
             " its celery_sweep_grace.")
    parser.add_argument(
        "--schedules", action="store_true",
        help="First enqueue the due ticks of the configuration's"
             " periodic schedules, each once however many runners do"
             " it (with no SECTION: only that). Workers do it at each"
             " pass.")
    parser.add_argument(
        "--processes", type=at_least_one, metavar="N",
        help="Run each job in a pool of N child processes"
             " (ProcessJobRunner).")
