"""Values on the `jobs` command line: reading ids, statuses and dates, and
printing rows as a table or JSON."""

__all__ = [
    "job_row",
    "output",
    "parse_date",
    "parse_id",
    "parse_status",
    "progress_bar",
    "redactor",
]

import json
import re
import sys
from collections import OrderedDict
from datetime import datetime, timedelta, timezone

from jobs.config import get_config
from jobs.database import database_now, get_store
from jobs.errorlog import Redactor
from jobs.errors import CommandError
from jobs.interfaces.job import JobStatus

# The largest id (the id columns are PostgreSQL's serial, an integer).
MAX_ID = 2 ** 31 - 1
FIELDS = ("id", "status", "attempt_count", "max_retries", "priority",
          "scheduled_start", "lease_expires", "date_created", "date_started",
          "date_finished")


def parse_status(text):
    """The `JobStatus` items of ``waiting,failed``-style `text`.

    :raises CommandError: for a name that is not a status.
    """
    names = []
    for name in text.split(","):
        try:
            names.append(JobStatus.items[name.strip().upper()])
        except KeyError:
            raise CommandError("Unknown status %r (one of: %s)." % (
                name, ", ".join(item.name.lower() for item in JobStatus.items)
            )) from None
    return names


def parse_date(text, now=None):
    """An ISO date/time (UTC unless it says) or an age like ``30d``/``2h``.

    :param now: what an age counts back from; default: the database's
        clock (the jobs' dates are the database's). OOPS reports are
        dated by the hosts that wrote them: those pass the host's.
    :raises CommandError: for anything else.
    """
    match = re.fullmatch(r"(\d+)([smhd])", text.strip())
    if match:
        unit = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
        if now is None:
            now = database_now(get_store())
        try:
            return now - timedelta(**{unit[match[2]]: int(match[1])})
        except OverflowError:
            raise CommandError(
                "Bad date %r: that age reaches back before the year 1."
                % text) from None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise CommandError(
            "Bad date %r: use YYYY-MM-DD[THH:MM[:SS]] or an age like 30d, "
            "12h." % text) from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    try:
        return value.astimezone(timezone.utc)
    except OverflowError:
        raise CommandError("Bad date %r: it is outside the years 1 to 9999"
                           " in UTC." % text) from None


def parse_id(text, what="job"):
    """A job id (or `what`'s: ``worker``).

    :raises CommandError: for anything but a whole number.
    """
    if not re.fullmatch(r"\d+", text):
        raise CommandError("Bad %s id %r: ids are whole numbers."
                           % (what, text))
    if int(text) > MAX_ID:
        raise CommandError("Bad %s id %r: the largest id is {:,}.".format(
            MAX_ID) % (what, text))
    return int(text)


def job_row(job):
    """The printable fields of `job` (a `Job` row), in order."""
    row = OrderedDict()
    for field in FIELDS:
        value = getattr(job, field)
        if field == "status":
            value = value.title
        elif isinstance(value, datetime):
            value = value.isoformat(" ", "seconds")
        row[field] = value
    return row


def output(rows, options, columns=None):
    """Print `rows` (list of dicts) as a table or as JSON."""
    if options.format == "json":
        print(json.dumps(rows, default=str, indent=1))
        return
    if not rows:
        print("(none)")
        return
    columns = columns or list(rows[0])
    widths = {c: max(len(c), *(len(str(r.get(c, ""))) for r in rows))
              for c in columns}
    print("  ".join(c.ljust(widths[c]) for c in columns).rstrip())
    for row in rows:
        print("  ".join(str(row.get(c, "")).ljust(widths[c])
                        for c in columns).rstrip())


def redactor():
    """Hides the configured secret names in what a command prints.

    The log and OOPS reports are redacted when written; this hides
    what was written before a name was configured, and progress status
    lines, which are stored as the job wrote them.
    """
    return Redactor(get_config().redact)


def progress_bar(total, description):
    """A progress bar (tqdm) on stderr for a long operation of `total`
    steps: shown on a terminal, silent when stderr is piped or a file.
    Use as a context manager; ``bar.update(n)`` after each batch."""
    from tqdm import tqdm
    return tqdm(total=total, desc=description, unit=" jobs", file=sys.stderr,
                disable=not sys.stderr.isatty(), leave=False)
