"""Every code block of README.md is run or checked here, so that none
can go stale unseen.

A block is found by the comment line just before it, or by its language:

- ``<!-- example: PATH -->``: the block is the file PATH of the checkout,
  which another test runs (the quickstart's files: ``test_wheel``);
- ``<!-- readme: install -->``, ``<!-- readme: quickstart -->``: shell
  steps ``test_wheel`` runs against the installed wheel;
- ``<!-- readme: python NAME -->``: Python run here with the namespace
  NAME prepares (a database, a configuration, a test case);
- ``<!-- readme: excerpt PATH -->``: each line of the block is a line of
  the file PATH, in order (the file runs in the tests);
- ``python`` (no comment): run with the namespace of its section;
- ``sql``: run on an empty PostgreSQL database holding the framework's
  tables and ``foo``;
- ``ini``: loaded as a configuration file (extending ``base``): its job
  sections, or its ``[web]`` section;
- ``yaml``: a Prometheus scrape configuration of ``/metrics``;
- ``sh`` and crontab lines: each command's program exists and accepts
  every option the line shows (``--help`` lists it);
- log lines: each message is one the code logs (a format string of
  ``lib/jobs``);
- the progress drawing: `jobs.progress.draw` of that tree;
- a listing (``jobs schedules``, ``jobs workers``): its header is the
  command's, column for column;
- the layout: every path exists.

A block none of these recognises fails the test, naming its line.
"""

import glob
import os
import re
import shlex
import subprocess
import sys
import textwrap
import types
from datetime import datetime, timezone

import transaction

from jobs.testing.script import ROOT
from jobs.testing.testcase import DatabaseTestCase, TestCase

README = os.path.join(ROOT, "README.md")
FENCE = re.compile(r"^( *)```(\w*)\s*$")
DIRECTIVE = re.compile(r"^\s*<!-- (example|readme): (.+?) -->\s*$")
LOG_LINE = re.compile(
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d (DEBUG|INFO|WARNING|ERROR) +(.*)$")
CRON_LINE = re.compile(r"^((?:\S+\s+){5})(.*)$")
# The blocks test_wheel runs.
WHEEL_BLOCKS = ("install", "quickstart")


def _listings():
    from jobs.cli import schedules, workers
    return [schedules.COLUMNS, workers.COLUMNS]


# The headers of the jobs commands whose output the README shows.
LISTINGS = _listings()


class Block:
    """One fenced block: its first line number, language, text, the
    section it is in and the directive before it (or None)."""

    def __init__(self, line, language, text, section, directive):
        self.line = line
        self.language = language
        self.text = text
        self.section = section
        self.directive = directive

    def __repr__(self):
        return "README.md:%d (```%s, %s)" % (
            self.line, self.language, self.section)


def readme_blocks(path=README):
    """Every fenced block of the README, in order."""
    blocks, section, directive = [], None, None
    lines = open(path, encoding="utf-8").read().splitlines()
    index = 0
    while index < len(lines):
        line = lines[index]
        if line.startswith("## "):
            section = line[3:].strip()
        fence = FENCE.match(line)
        if fence is None:
            match = DIRECTIVE.match(line)
            if match:
                directive = (match[1], match[2])
            elif line.strip():
                directive = None
            index += 1
            continue
        indent, language = fence.groups()
        body = []
        index += 1
        while not re.match(r"^%s```\s*$" % indent, lines[index]):
            body.append(lines[index])
            index += 1
        blocks.append(Block(index - len(body), language,
                            textwrap.dedent("\n".join(body)), section,
                            directive))
        directive = None
        index += 1
    return blocks


def block(name):
    """The text of the block marked ``<!-- readme: NAME -->``."""
    [found] = [b for b in readme_blocks()
               if b.directive == ("readme", name)]
    return found.text


def log_templates():
    """Regexes of the messages `lib/jobs` logs (its format strings)."""
    templates = []
    call = re.compile(r"""(?:logger\.(?:debug|info|warning|error|exception)\(|\b[A-Z_]+_LINE = )\s*((?:"[^"]*"\s*)+)""", re.S)
    for path in glob.glob(os.path.join(ROOT, "lib", "jobs", "**", "*.py"),
                          recursive=True):
        text = open(path, encoding="utf-8").read()
        for match in call.finditer(text):
            fmt = "".join(re.findall(r'"([^"]*)"', match[1]))
            if len(re.sub(r"%[-+ #0-9.]*[sdrif]|\W", "", fmt)) < 4:
                continue  # "%s": says nothing of the message
            pattern = re.escape(fmt)
            pattern = re.sub(r"%\\?[-+ #0-9.]*[sdrif]", ".+", pattern)
            templates.append(re.compile("^%s$" % pattern))
    return templates


class TestReadmeBlocks(TestCase):
    """The blocks that need no database."""

    def test_every_block_is_recognised(self):
        unknown = [b for b in readme_blocks() if self.check_of(b) is None]
        self.assertEqual([], unknown)

    def check_of(self, b):
        """The method that checks `b`, or None."""
        if b.directive is not None:
            kind, argument = b.directive
            if kind == "example":
                return self.check_example
            if argument in WHEEL_BLOCKS:
                return self.check_wheel
            if argument.startswith("excerpt "):
                return self.check_excerpt
            if argument.startswith("python ") or argument.startswith("ini "):
                return self.check_elsewhere
            return None
        if b.language in ("python", "sql"):
            return self.check_elsewhere
        if b.language == "ini":
            return self.check_ini
        if b.language == "sh":
            return self.check_commands
        if b.language == "yaml":
            return self.check_scrape_config
        if b.language == "":
            lines = [line for line in b.text.splitlines() if line.strip()]
            if all(LOG_LINE.match(line) for line in lines):
                return self.check_log
            if all(CRON_LINE.match(line) and line[0] in "*0123456789"
                   for line in lines):
                return self.check_commands
            if lines[0] == "progress:":
                return self.check_progress
            if lines[0].split() in LISTINGS:
                return self.check_listing
            if lines[0].startswith("lib/jobs/"):
                return self.check_layout
        return None

    def test_every_picture_is_in_the_checkout(self):
        text = open(README, encoding="utf-8").read()
        pictures = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
        self.assertTrue(pictures)
        for path in pictures:
            self.assertTrue(os.path.isfile(os.path.join(ROOT, path)), path)

    def test_blocks_that_need_no_database(self):
        for b in readme_blocks():
            check = self.check_of(b)
            if check is not None and check != self.check_elsewhere:
                check(b)

    def check_elsewhere(self, b):
        """Python and SQL blocks: `TestReadmeCode`."""

    def check_example(self, b):
        path = os.path.join(ROOT, b.directive[1])
        with open(path, encoding="utf-8") as f:
            self.assertEqual(f.read().rstrip("\n"), b.text, b)

    def check_excerpt(self, b):
        """Each line of the block is a line of the file, in order (blank
        lines, comments and ``...`` left out)."""
        path = os.path.join(ROOT, b.directive[1].split(None, 1)[1])
        with open(path, encoding="utf-8") as f:
            source = [line.strip() for line in f]
        position = 0
        for line in b.text.splitlines():
            line = re.sub(r"\s+#.*$", "", line).strip()
            line = re.sub(r":\s*\.\.\.$", ":", line)
            if not line or line == "..." or line.startswith("#"):
                continue
            try:
                position = source.index(line, position) + 1
            except ValueError:
                self.fail("%r: %r is not in %s (after line %d)" % (
                    b, line, path, position))

    def check_wheel(self, b):
        from tests.scripts import test_wheel
        self.assertIn(b.directive[1], test_wheel.README_BLOCKS, b)

    def check_ini(self, b):
        from jobs.config import load
        folder = self.useFixture(__import__("fixtures").TempDir()).path
        path = os.path.join(folder, "readme.conf")
        text = b.text
        if "[meta]" not in text:
            text = "[meta]\nextends: base\n\n" + text
        with open(path, "w") as f:
            f.write(text)
        config = load(path)
        if "[web]" in text:
            # The dashboard's settings: valid, and turned on.
            self.assertTrue(config.web.enabled, b)
            return
        # Every other section is the schema's (the load checks it:
        # [workers], [schedule.NAME]) or a job section.
        for name in config.job_section_names:
            config.job_section(name)

    def check_commands(self, b):
        for line in b.text.splitlines():
            line = line.split("#", 1)[0].strip() if not line.startswith(
                "*") else line
            cron = CRON_LINE.match(line)
            if cron and line[:1] in "*0123456789":
                line = cron[2].split("#", 1)[0].strip()
            for command in re.split(r"\s+/\s+|\s*&&\s*", line):
                if command:
                    self.check_command(b, command)

    def check_command(self, b, command):
        words = shlex.split(command)
        while words and (re.match(r"^\w+=", words[0]) or words[0] == "cd"):
            words = words[2:] if words[0] == "cd" else words[1:]
        if not words:
            return  # only a change of folder
        program = [word for word in words if not word.startswith("[")]
        name = os.path.basename(program[0]) if program else ""
        options = sorted({re.split(r"[=\s\]]", word.strip("[]"))[0]
                          for word in words if word.lstrip("[").startswith(
                              "-")})
        if name in ("demo", "test"):  # bin/demo, bin/test
            self.assertTrue(os.access(os.path.join(ROOT, program[0]),
                                      os.X_OK), b)
            return
        if name == "run_jobs.py" or name == "python":
            argv = [sys.executable, os.path.join(
                ROOT, "cronscripts", "run_jobs.py")]
        elif name == "jobs":
            argv = [sys.executable, "-m", "jobs"] + self.subcommand(
                program[1:])
        else:
            self.fail("%r: unknown program %r in %r" % (b, name, command))
        help_text = subprocess.run(
            argv + ["--help"], capture_output=True, text=True,
            timeout=60).stdout
        self.assertIn("usage:", help_text, (b, command))
        for option in options:
            self.assertIn(option, help_text, (b, command, option))

    @staticmethod
    def subcommand(words):
        """The sub-command words of a ``jobs`` command line."""
        found = []
        for word in words:
            if not re.match(r"^[a-z][a-z-]*$", word):
                break
            found.append(word)
            if word not in ("db", "oops"):
                break
        return found

    def check_scrape_config(self, b):
        """A Prometheus scrape configuration: each job scrapes /metrics,
        which `jobs web` and a worker's --metrics-port serve."""
        from jobs.web.app import ROUTES
        self.assertIn("/metrics", dict(ROUTES).values())
        lines = [line.strip() for line in b.text.splitlines()]
        self.assertEqual("scrape_configs:", lines[0], b)
        jobs = [line for line in lines if line.startswith("- job_name:")]
        paths = [line for line in lines if line.startswith("metrics_path:")]
        self.assertTrue(jobs, b)
        self.assertEqual(["metrics_path: /metrics"] * len(jobs), paths, b)
        self.assertEqual(len(jobs), len([
            line for line in lines if line.startswith("- targets: [")]), b)

    def check_log(self, b):
        templates = log_templates()
        for line in b.text.splitlines():
            if not line.strip():
                continue
            message = LOG_LINE.match(line)[2]
            self.assertTrue(any(t.match(message) for t in templates),
                            (b, message))

    def check_progress(self, b):
        import json
        from jobs.progress import ProgressTree, draw
        tree = ProgressTree()
        tree.set(3, 3, "done", ("copy",))
        tree.set(1, 9, "indexing foo 17", ("index",))
        self.assertEqual(b.text, "progress:\n" + draw(tree.to_json()))
        self.assertEqual({"current": 4, "total": 12},
                         {key: json.loads(tree.to_json())[key]
                          for key in ("current", "total")})

    def check_listing(self, b):
        """A listing's header is its command's, and each row has a value
        in each column (a row may have more words: a value with spaces)."""
        lines = b.text.splitlines()
        self.assertIn(lines[0].split(), LISTINGS, b)
        for line in lines[1:]:
            self.assertGreaterEqual(len(line.split()), len(lines[0].split()),
                                    (b, line))

    def check_layout(self, b):
        for line in b.text.splitlines():
            if line.strip() and not line.startswith(" "):
                path = line.split()[0]
                self.assertTrue(os.path.exists(os.path.join(ROOT, path)),
                                (b, path))


class TestReadmeCode(DatabaseTestCase):
    """The Python and SQL blocks, each in the namespace its section
    needs, on SQLite (SQL: on PostgreSQL)."""

    database_kind = "sqlite"
    __test__ = True
    config_extra = "[mail]\ntasks: readme_tasks.*\n"

    def setUp(self):
        # The module the blocks run in: the [mail] section imports it.
        self.module = types.ModuleType("readme_tasks")
        sys.modules["readme_tasks"] = self.module
        self.addCleanup(sys.modules.pop, "readme_tasks")
        super().setUp()

    def namespace(self, b):
        """What block `b` runs with: its section's names."""
        from lazr.enum import DBEnumeratedType, DBItem
        from storm.locals import Int, Reference
        from zope.interface import implementer, provider
        import jobs.runner
        from jobs.config import get_config
        from jobs.database import JSON, DBEnum
        from jobs.interfaces.job import IJobSource, IRunnableJob, JobStatus
        from jobs.log import BufferLogger
        from jobs.model import DerivedJob, Job
        from jobs.testing import foojob
        names = self.module.__dict__
        names.update(vars(foojob))
        names.update(
            __name__="readme_tasks", DBEnumeratedType=DBEnumeratedType,
            DBItem=DBItem, Int=Int, Reference=Reference, JSON=JSON,
            DBEnum=DBEnum, Job=Job, DerivedJob=DerivedJob,
            IRunnableJob=IRunnableJob, IJobSource=IJobSource,
            implementer=implementer, provider=provider, sys=sys,
            JobCronScript=jobs.runner.JobCronScript, JobStatus=JobStatus,
            BufferLogger=BufferLogger, get_config=get_config,
            transaction=transaction, self=self)
        names["foo"] = self.factory.makeFoo()
        if b.directive == ("readme", "python testing"):
            names["job"] = self.factory.makeDoFooJob()
            transaction.commit()
        if b.section == "OOPS reports":
            self.write_report("OOPS-dd0cf58ad26ad55339bdb328d16f56e3")
        return names

    def write_report(self, oops_id):
        """A report filed under `oops_id` (the README's example id)."""
        from jobs.errorlog import ErrorReporter
        reporter = ErrorReporter(self.config.error_dir, "T")
        report = reporter.message("ValueError", "an example")
        folder = os.path.join(self.config.error_dir, datetime.now(
            timezone.utc).strftime("%Y-%m-%d"))
        [path] = glob.glob(os.path.join(folder, report["id"]))
        os.rename(path, os.path.join(folder, oops_id))

    def test_python_blocks_run(self):
        ran = 0
        for b in readme_blocks():
            if b.language != "python" or (b.directive and (
                    b.directive[0] == "example"
                    or b.directive[1].startswith("excerpt "))):
                continue
            namespace = self.namespace(b)
            try:
                exec(compile(b.text, repr(b), "exec"), namespace)
            except Exception as e:
                self.fail("%r raised %s: %s" % (b, type(e).__name__, e))
            transaction.abort()
            ran += 1
        self.assertGreater(ran, 3)

    def test_sql_blocks_run_on_postgresql(self):
        from jobs import schema
        from jobs.database import connect, disconnect, get_store
        from jobs.testing.databases import (
            create_empty_database,
            drop_test_database,
            run_database_name,
        )
        name = run_database_name("readme")
        uri = create_empty_database(name)
        self.addCleanup(drop_test_database, name)
        self.addCleanup(disconnect)
        connect(uri)
        store = get_store()
        schema.upgrade(store)
        store.execute("CREATE TABLE foo (id serial PRIMARY KEY, name text)")
        for b in readme_blocks():
            if b.language == "sql" and b.directive is None:
                for statement in schema.split_statements(b.text):
                    store.execute(statement)
        transaction.abort()
