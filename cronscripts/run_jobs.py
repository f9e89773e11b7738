#!/usr/bin/env python3
"""Run the ready jobs of the job sections named on the command line.

    cronscripts/run_jobs.py [-v] [-q] [--log-file=LEVEL:FILE] SECTION [SECTION ...]

See ``--help`` for the exit status.
"""

from jobs.runner import JobCronScript

if __name__ == "__main__":
    JobCronScript(commandline_config=True).run_and_exit()
