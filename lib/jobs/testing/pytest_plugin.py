"""A pytest plugin: one test run, one name for its databases.

Load it with ``-p jobs.testing.pytest_plugin`` (jobs' own ``pytest.ini``
does). pytest's controller makes a fresh run id (`jobs.testing.fixtures`) and
hands it to its xdist workers, so that every database and role a run makes
on the shared PostgreSQL server is named after it. At the end each process
drops what it made, and the controller whatever is left under the run's
name (a worker that crashed), and nothing else: another checkout's run on
the same server keeps its own.
"""

import os
from typing import Any

import pytest

from jobs.testing import databases

WORKER_INPUT_KEY = "jobs_test_run_id"


def pytest_configure(config: Any) -> None:
    workerinput = getattr(config, "workerinput", None)
    if workerinput is None:
        databases.new_test_run()
    else:
        os.environ[databases.RUN_ID_VARIABLE] = workerinput[WORKER_INPUT_KEY]


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    node.workerinput[WORKER_INPUT_KEY] = databases.current_run_id()


def pytest_unconfigure(config: Any) -> None:
    controller = getattr(config, "workerinput", None) is None
    databases.drop_test_run(everything=controller)
