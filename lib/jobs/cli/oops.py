"""``jobs oops``: list, show and summarise OOPS reports
(`jobs.errorlog` reads them)."""

__all__ = ["add_commands"]

import json
from collections import OrderedDict

from jobs.cli.formatting import output, parse_date, redactor
from jobs.config import get_config
from jobs.database import clock
from jobs.errorlog import iter_reports, read_report, report_time, summarise
from jobs.errors import CommandError, JobsError


def reports_since(options):
    """``--since`` of the ``oops`` commands: reports are dated by the
    hosts that wrote them, so an age counts back from this host's clock."""
    if not options.since:
        return None
    return parse_date(options.since, now=clock.now())


def cmd_oops_list(options):
    since = reports_since(options)
    hide = redactor()
    rows = [OrderedDict(id=r["id"], time=str(report_time(r)),
                        type=r.get("type"), job_id=r.get("job_id"),
                        value=hide.text(r.get("value") or "")[:60])
            for r in iter_reports(get_config().error_dir, since)]
    output(rows, options)


def cmd_oops_show(options):
    try:
        report = redactor().data(
            read_report(get_config().error_dir, options.id))
    except JobsError as e:
        raise CommandError(str(e)) from None
    if options.format == "json":
        print(json.dumps(report, default=str, indent=1))
        return
    for key in ("id", "time", "reporter", "type", "value", "job_id",
                "job_type", "operation", "req_vars", "locals"):
        print("%-10s %s" % (key + ":", report.get(key)))
    print("traceback:\n%s" % report.get("tb_text", ""))


def cmd_oops_summary(options):
    output(summarise(iter_reports(get_config().error_dir,
                                  reports_since(options))), options)


def add_commands(commands, parser_class):
    """Add ``oops`` and its sub-commands to `commands` (argparse)."""
    oops = commands.add_parser("oops", help="read OOPS reports")
    oops_commands = oops.add_subparsers(dest="oops_command", required=True,
                                        parser_class=parser_class)
    oops_list = oops_commands.add_parser("list", help="reports, oldest first")
    oops_list.add_argument("--since")
    oops_list.set_defaults(run=cmd_oops_list)
    oops_show = oops_commands.add_parser("show", help="one report")
    oops_show.add_argument("id")
    oops_show.set_defaults(run=cmd_oops_show)
    summary = oops_commands.add_parser(
        "summary", help="reports grouped by exception type and frame")
    summary.add_argument("--since")
    summary.set_defaults(run=cmd_oops_summary)
