"""``jobs oops``: list, show and summarise OOPS reports from the OOPS
index (`jobs.model.oopsreport`), which lists the reports of every host;
index this host's files; delete old ones."""

__all__ = ["add_commands"]

import json
from collections import OrderedDict

import transaction

from jobs.cli.formatting import output, parse_date, redactor
from jobs.config import get_config
from jobs.database import clock, get_store
from jobs.errors import CommandError, JobsError
from jobs.model import oopsreport
from jobs.oopsindex import (
    day_folders_before,
    read_indexed,
    reindex,
    remove_day_folders,
)
from jobs.runoptions import at_least_one


def reports_since(options):
    """``--since`` of the ``oops`` commands: reports are dated by the
    hosts that wrote them, so an age counts back from this host's clock."""
    if not options.since:
        return None
    return parse_date(options.since, now=clock.now())


def when(value):
    return value.isoformat(" ", "seconds") if value is not None else None


def cmd_oops_list(options):
    hide = redactor()
    rows = [OrderedDict(id=r.id, time=when(r.reported), host=r.host,
                        section=r.section, job_id=r.job_id,
                        type=r.exception_type,
                        value=hide.text(r.exception_value or "")[:60])
            for r in oopsreport.list_reports(
                get_store(), reports_since(options),
                fingerprint=options.fingerprint, limit=options.limit)]
    output(rows, options)


def cmd_oops_show(options):
    try:
        report = redactor().data(
            read_indexed(get_store(), get_config(), options.id))
    except JobsError as e:
        raise CommandError(str(e)) from None
    if options.format == "json":
        print(json.dumps(report, default=str, indent=1))
        return
    for key in ("id", "time", "hostname", "reporter", "type", "value",
                "job_id", "job_type", "operation", "req_vars", "locals"):
        print("%-10s %s" % (key + ":", report.get(key)))
    print("traceback:\n%s" % report.get("tb_text", ""))


def cmd_oops_summary(options):
    rows = [OrderedDict(
        fingerprint=group["fingerprint"], count=group["count"],
        first_seen=when(group["first_seen"]),
        last_seen=when(group["last_seen"]), hosts=group["hosts"],
        example=group["example"])
        for group in oopsreport.summarise(get_store(), reports_since(options))]
    output(rows, options)


def cmd_oops_reindex(options):
    added = reindex(get_store(), get_config())
    print("Indexed %d OOPS reports of %s." % (added, get_config().error_dir))


def cmd_oops_prune(options):
    config = get_config()
    before = parse_date(options.older_than, now=clock.now())
    folders = day_folders_before(config, before)
    if options.dry_run:
        print("Would delete %d days of OOPS reports in %s." % (
            len(folders), config.error_dir))
        return
    ids = remove_day_folders(folders)
    store = get_store()
    for start in range(0, len(ids), 1000):
        oopsreport.delete_rows(store, ids[start:start + 1000])
    transaction.commit()
    print("Deleted %d OOPS reports (%d days) from %s." % (
        len(ids), len(folders), config.error_dir))


def add_commands(commands, parser_class):
    """Add ``oops`` and its sub-commands to `commands` (argparse)."""
    oops = commands.add_parser("oops", help="read OOPS reports")
    oops_commands = oops.add_subparsers(dest="oops_command", required=True,
                                        parser_class=parser_class)
    oops_list = oops_commands.add_parser(
        "list", help="reports of every host, oldest first (the index)")
    oops_list.add_argument("--since", help="a date or an age (12h, 30d)")
    oops_list.add_argument("--fingerprint",
                           help="only the reports of this fingerprint")
    oops_list.add_argument("--limit", type=at_least_one, default=None,
                           help="only the newest N")
    oops_list.set_defaults(run=cmd_oops_list)
    oops_show = oops_commands.add_parser(
        "show", help="one report, read from its file (if it is on another"
        " host, says which)")
    oops_show.add_argument("id")
    oops_show.set_defaults(run=cmd_oops_show)
    summary = oops_commands.add_parser(
        "summary", help="reports grouped by exception type and frame")
    summary.add_argument("--since")
    summary.set_defaults(run=cmd_oops_summary)
    oops_commands.add_parser(
        "reindex", help="index this host's report files the index lacks"
    ).set_defaults(run=cmd_oops_reindex)
    prune = oops_commands.add_parser(
        "prune", help="delete this host's report files (whole days) older"
        " than an age, and their index rows")
    prune.add_argument("--older-than", required=True,
                       help="an age (30d) or a date")
    prune.add_argument("--dry-run", action="store_true")
    prune.set_defaults(run=cmd_oops_prune)
