"""Celery: jobs sent to Celery workers on other hosts after commit.

- `jobs.celery.dispatch`: the app from ``[celery]``, sending after commit
  (a subscriber of job creation, registered when a section dispatches);
- `jobs.celery.task`: the ``jobs.run_job`` task and the worker command;
- `jobs.celery.sweep`: sending again the jobs no worker claimed.

Only `jobs.celery.task` imports Celery at import time; install the
``celery`` extra to run workers.
"""
