#!/usr/bin/env python3
"""A custom cron script for one job section: the pattern to copy.

Setting ``config_name`` and ``source_interface`` on a `JobCronScript`
subclass fixes the section, so the cron line needs no argument:

    */5 * * * *  JOBS_CONFIG=production cronscripts/run_do_foo.py -q
"""

import sys

from jobs.runner import JobCronScript
from jobs.testing.foojob import IDoFooJobSource


class RunDoFoo(JobCronScript):
    """Run the ready DoFooJob jobs."""

    config_name = "do_foo"
    source_interface = IDoFooJobSource


if __name__ == "__main__":
    sys.exit(RunDoFoo(name="run_do_foo").lock_and_run())
