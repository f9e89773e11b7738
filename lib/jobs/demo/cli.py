"""``jobs-demo``: set up the demo database, create demo jobs, show results.

    jobs-demo create   install the schema; add one job that completes,
                       one that retries and one that fails
    jobs-demo report   list the demo jobs and read back their OOPS reports
"""

__all__ = ["main"]

import argparse
import glob
import os
import sys

import transaction

from jobs import schema
from jobs.config import get_config
from jobs.database import connect, get_store
from jobs.demo.model import DEMO_JOB_TYPE, DemoJob
from jobs.errorlog import read_report
from jobs.errors import JobsError
from jobs.model.job import Job


def create():
    store = get_store()
    applied = schema.upgrade(store)
    print("Schema: %s" % (
        ", ".join("%s %04d_%s" % row for row in applied) or "up to date"))
    for action, message in [("complete", "hello from a job"),
                            ("retry", "the service is busy"),
                            ("fail", "this one breaks")]:
        job = DemoJob.create(action, message, max_retries=2)
        print("Created demo job %d (%s)." % (job.job_id, action))
    transaction.commit()


def report():
    config = get_config()
    store = get_store()
    for job in store.find(Job, Job.base_job_type == DEMO_JOB_TYPE).order_by(
            Job.id):
        print("Job %d %-8s %-9s attempts=%d scheduled_start=%s" % (
            job.id, job.base_json_data["action"], job.status.title,
            job.attempt_count, job.scheduled_start))
    for path in sorted(glob.glob(os.path.join(config.error_dir, "*", "OOPS-*"))):
        oops = read_report(config.error_dir, os.path.basename(path))
        print("OOPS %s (read back from %s): %s: %s; job %s; req_vars %s" % (
            oops["id"], path, oops["type"], oops["value"],
            oops.get("job_id"), oops.get("req_vars")))
    transaction.abort()


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="jobs-demo", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["create", "report"])
    options = parser.parse_args(argv)
    try:
        connect(get_config().database_uri)
        {"create": create, "report": report}[options.command]()
    except JobsError as e:
        print("jobs-demo: %s" % e, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
