"""Acceptance: the README's quickstart, from a wheel installed into a
fresh virtual environment outside the checkout.

The wheel is built from the checkout; the README's install block makes a
virtual environment in a temporary folder and installs the wheel into it
(its dependencies from the package index, or pip's cache); no editable
install, no ``PYTHONPATH``. The application is ``examples/quickstart``
copied into another temporary folder, and the README's quickstart block
runs there, line by line, on SQLite and on PostgreSQL (through
``JOBS_DATABASE_URI``).
"""

import atexit
import functools
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest
from types import SimpleNamespace

from jobs.model import BaseRunnableJob
from jobs.testing.databases import (
    create_empty_database,
    drop_test_database,
    run_database_name,
)
from jobs.testing.script import ROOT
from jobs.testing.testcase import TestCase
from tests.scripts.test_readme import block

# The README blocks this test runs.
README_BLOCKS = ("install", "quickstart")
EXAMPLE = os.path.join(ROOT, "examples", "quickstart")
KINDS = ("sqlite", "postgresql")


def seed_style_jobs_run():
    """True once `BaseRunnableJob` finds a seed-style job's row through
    its ``context`` (issue 12): until then the quickstart's typed job
    cannot run, and its test is expected to fail."""
    class Probe(BaseRunnableJob):
        def __init__(self, context):
            self.context = context
    try:
        return Probe(SimpleNamespace(job="row")).job == "row"
    except AttributeError:
        return False


def environment(**more):
    """A user's environment: no virtualenv, no PYTHONPATH, no test
    settings of ours."""
    env = {name: value for name, value in os.environ.items()
           if not name.startswith(("JOBS_", "PYTHON", "VIRTUAL_ENV",
                                   "PYTEST", "PIP_REQUIRE"))}
    bin_folder = os.path.dirname(sys.executable)
    env["PATH"] = os.pathsep.join(
        part for part in env.get("PATH", "").split(os.pathsep)
        if os.path.abspath(part) != os.path.abspath(bin_folder))
    env.update(more)
    return env


def temporary_folder(prefix):
    """A new folder, removed when this process exits."""
    folder = tempfile.mkdtemp(prefix=prefix)
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


def bash(script, cwd, env, timeout=300):
    process = subprocess.run(["bash", "-c", script], cwd=cwd, env=env,
                             capture_output=True, text=True,
                             timeout=timeout, stdin=subprocess.DEVNULL)
    return process.returncode, process.stdout, process.stderr


@functools.lru_cache(maxsize=None)
def wheel():
    """The wheel built from the checkout."""
    dist = temporary_folder("jobs-dist-")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet",
         "--disable-pip-version-check", "-w", dist, ROOT],
        check=True, capture_output=True, timeout=300)
    [built] = glob.glob(os.path.join(dist, "*.whl"))
    return built


@functools.lru_cache(maxsize=None)
def installed(extras=""):
    """Install the wheel (with `extras`, e.g. ``[test]``) as the README
    says into a new folder; return that folder (its ``.venv`` is the
    virtual environment)."""
    folder = temporary_folder("jobs-wheel-")
    script = block("install").replace("/path/to/jobs",
                                      "'%s%s'" % (wheel(), extras))
    code, out, err = bash("set -e\n" + script, folder,
                          environment(PIP_DISABLE_PIP_VERSION_CHECK="1"))
    if code:
        raise AssertionError("The README's install block failed (%d):\n%s%s"
                             % (code, out, err))
    return folder


@functools.lru_cache(maxsize=None)
def quickstart(kind):
    """Run the README's quickstart in a copy of the example application,
    on `kind`; return ``(app folder, [(line, code, out, err)], jobs)``:
    `jobs` is ``jobs --format json list``'s rows by id."""
    venv = os.path.join(installed(), ".venv")
    app = temporary_folder("jobs-app-")
    shutil.copytree(EXAMPLE, app, dirs_exist_ok=True)
    os.symlink(venv, os.path.join(app, ".venv"))
    env = environment()
    if kind == "postgresql":
        name = run_database_name("wheel")
        env["JOBS_DATABASE_URI"] = create_empty_database(name)
    exports, results = [], []
    for line in block("quickstart").splitlines():
        command = line.split("  #", 1)[0].strip()
        if not command:
            continue
        if command.startswith("export "):
            exports.append(command)
        code, out, err = bash("\n".join(exports + [command]), app, env)
        results.append((command, code, out, err))
    code, out, err = bash("\n".join(
        exports + [".venv/bin/jobs --format json list"]), app, env)
    listed = {row["id"]: row for row in json.loads(out)} if not code else {}
    if kind == "postgresql":
        drop_test_database(name)
    return app, results, listed


class TestQuickstartFromTheWheel(TestCase):

    def ran(self, kind, prefix):
        """The result of the quickstart line starting with `prefix`."""
        _, results, _ = quickstart(kind)
        [result] = [r for r in results if r[0].startswith(prefix)]
        return result

    def test_the_package_installs_and_runs_function_jobs(self):
        venv = os.path.join(installed(), ".venv")
        for command in (["jobs", "--help"], ["jobs", "run", "--help"]):
            process = subprocess.run(
                [os.path.join(venv, "bin", command[0])] + command[1:],
                capture_output=True, text=True, env=environment(),
                timeout=60)
            self.assertEqual(0, process.returncode, process.stderr)
            self.assertIn("usage: jobs", process.stdout)
        # Runtime dependencies only: the test helpers are an extra.
        probe = subprocess.run(
            [os.path.join(venv, "bin", "python"), "-c",
             "import jobs, jobs.tasks, jobs.runner; import testtools"],
            capture_output=True, text=True, env=environment(), timeout=60)
        self.assertIn("No module named 'testtools'", probe.stderr)
        for kind in KINDS:
            app, results, listed = quickstart(kind)
            for prefix in ("export", ".venv/bin/jobs db upgrade",
                           ".venv/bin/python enqueue.py",
                           ".venv/bin/jobs list", ".venv/bin/jobs show 1"):
                command, code, out, err = self.ran(kind, prefix)
                self.assertEqual(0, code, (kind, command, out, err))
            self.assertIn("myapp.schema 0001_thumbnail_job",
                          self.ran(kind, ".venv/bin/jobs db upgrade")[2])
            self.assertEqual("Enqueued 5 jobs.\n",
                             self.ran(kind, ".venv/bin/python enqueue.py")[2])
            self.assertEqual([1, 2, 3, 4, 5], sorted(listed), kind)
            self.assertEqual(["Completed"] * 3,
                             [listed[i]["status"] for i in (1, 2, 3)], kind)
            self.assertIn("Ran 3 FunctionJob jobs.",
                          self.ran(kind, ".venv/bin/jobs run")[3])
            self.assertRegex(self.ran(kind, ".venv/bin/jobs show 1")[2],
                             r"status: +Completed")
            if kind == "sqlite":
                self.assertTrue(os.path.exists(
                    os.path.join(app, "var", "app.db")))

    def test_job_authors_get_jobs_testing_with_the_test_extra(self):
        venv = os.path.join(installed("[test]"), ".venv")
        probe = subprocess.run(
            [os.path.join(venv, "bin", "python"), "-c",
             "from jobs.testing.testcase import DatabaseTestCase;"
             " from jobs.testing.fixtures import FrozenClockFixture;"
             " import jobs.testing.pytest_plugin; print('ok')"],
            capture_output=True, text=True, env=environment(), timeout=60)
        self.assertEqual(("ok\n", ""), (probe.stdout, probe.stderr))

    def test_the_environment_gets_no_commands_but_ours_and_oops_datedir_repos(self):
        venv = os.path.join(installed(), ".venv")
        scripts = {}
        for path in glob.glob(os.path.join(venv, "bin", "*")):
            with open(path, "rb") as f:
                head = f.read(2000).decode("utf-8", "replace")
            found = re.search(r"^from (\S+) import \w+$", head, re.M)
            if found:
                scripts[os.path.basename(path)] = found[1]
        # pip and distro (launchpadlib's) aside: ours, and the two that
        # oops-datedir-repo installs with itself (README, "What gets
        # installed": pip cannot leave a dependency's scripts out).
        self.assertEqual(
            {"jobs": "jobs.cli", "jobs-demo": "jobs.demo.cli",
             "prune": "oops_datedir_repo.prune",
             "bsondump": "oops_datedir_repo.bsondump",
             # The progress bars' library (jobs prune, bulk actions).
             "tqdm": "tqdm.cli"},
            {name: module for name, module in scripts.items()
             if not module.startswith(("pip", "distro"))})

    def test_the_seed_style_typed_job_completes(self):
        for kind in KINDS:
            _, _, listed = quickstart(kind)
            command, code, out, err = self.ran(kind, ".venv/bin/jobs run")
            self.assertEqual(0, code, (kind, out, err))
            self.assertEqual(["Completed"] * 2,
                             [listed[i]["status"] for i in (4, 5)], kind)
            self.assertIn("Ran 2 MakeThumbnailJob jobs.", err)

    if not seed_style_jobs_run():
        # Waiting for the runner core (issue 12): BaseRunnableJob.job
        # from self.context. Passing before then fails the run.
        test_the_seed_style_typed_job_completes = unittest.expectedFailure(
            test_the_seed_style_typed_job_completes)
