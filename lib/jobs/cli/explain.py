"""``jobs explain ID``: why a job is not running (`jobs.explain`)."""

__all__ = ["add_commands"]

import json

from jobs.cli.formatting import parse_id
from jobs.config import get_config
from jobs.database import get_store
from jobs.errors import CommandError
from jobs.explain import explain
from jobs.model.job import Job


def cmd_explain(options):
    job_id = parse_id(options.id)
    store = get_store()
    job = store.get(Job, job_id)
    if job is None:
        raise CommandError("No job %d." % job_id)
    reasons = explain(store, get_config(), job)
    if options.format == "json":
        print(json.dumps([{"reason": code, "text": text}
                          for code, text in reasons], indent=1))
        return
    for _, text in reasons:
        print(text)


def add_commands(commands, parser_class):
    """Add ``explain`` to `commands` (argparse)."""
    command = commands.add_parser(
        "explain", help="why a job is not running: scheduled later, lease"
        " held, waiting on a dependency, over a limit, orphaned, a role's"
        " privilege, the section's lock")
    command.add_argument("id")
    command.set_defaults(run=cmd_explain)
