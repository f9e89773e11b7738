"""Secrets: the configured names (``[error_reports] redact``) are hidden in
every outlet — OOPS reports, log lines (stderr, ``--log-file``, the job's
log tail) and ``jobs show`` / ``jobs oops show``.

The job (DoFooJob with ``secret``) holds the password in a local, logs
it, reports it in a progress status line, returns it from
``getOopsVars`` (under a secret name, and inside text) and puts it in
its exception's message. Each outlet is checked for the password's
absence and for ``<redacted>`` where it stood, so a test that looked at
the wrong text could not pass.
"""

import glob
import io
import json
import os

import fixtures
import transaction
from testtools.matchers import Contains, Not

from jobs.cli import main
from jobs.errorlog import ErrorReporter
from jobs.testing.script import run_script
from jobs.testing.testcase import DatabaseTestCase, on_each_database

SECRET = "Tr0ub4dor-and-3"
RUN_JOBS = "cronscripts/run_jobs.py"


@on_each_database
class TestSecretsAreRedacted(DatabaseTestCase):

    def setUp(self):
        super().setUp()
        self.job = self.factory.makeDoFooJob(secret=SECRET, raise_="error")
        self.job_id = self.job.job_id
        transaction.commit()
        log_file = os.path.join(self.useFixture(fixtures.TempDir()).path,
                                "run.log")
        code, _, self.stderr = run_script(
            RUN_JOBS, ["--log-file", "INFO:%s" % log_file, "do_foo"])
        self.assertEqual(0, code, self.stderr)
        with open(log_file) as f:
            self.log_file = f.read()
        self.store.invalidate()

    def jobs(self, *argv):
        out, err = io.StringIO(), io.StringIO()
        self.useFixture(fixtures.MonkeyPatch("sys.stdout", out))
        self.useFixture(fixtures.MonkeyPatch("sys.stderr", err))
        code = main(list(argv))
        self.assertEqual(0, code, err.getvalue())
        return out.getvalue()

    def assertRedacted(self, text, *redacted):
        self.assertThat(text, Not(Contains(SECRET)))
        for fragment in redacted:
            self.assertThat(text, Contains(fragment))

    def test_the_job_failed_with_an_oops(self):
        # What the other tests look at exists.
        [path] = glob.glob(os.path.join(self.config.error_dir, "*", "OOPS-*"))
        self.assertEqual("Failed", self.job.status.title)

    def test_oops_report(self):
        [path] = glob.glob(os.path.join(self.config.error_dir, "*", "OOPS-*"))
        with open(path, "rb") as f:
            self.assertNotIn(SECRET.encode(), f.read())
        [oops] = self.oopses()
        self.assertEqual(
            ("Login refused: password=<redacted>", "<redacted>",
             "<redacted>", "<redacted>", "mailer password=<redacted>"),
            (oops["value"], oops["locals"]["password"],
             oops["locals"]["secret"], oops["req_vars"]["smtp_password"],
             oops["req_vars"]["smtp_login"]))
        self.assertRedacted(repr(oops["locals"]["data"]),
                            "'secret': <redacted>")
        self.assertRedacted(oops["log_tail"],
                            "with password=<redacted>")

    def test_log_lines(self):
        line = "INFO    Logging in to the mail server with password=<redacted>"
        self.assertRedacted(self.stderr, line)
        self.assertRedacted(self.log_file, line)
        self.assertRedacted(self.job.log, line)

    def test_jobs_show(self):
        self.assertRedacted(
            self.jobs("show", str(self.job_id)),
            "Logging in to the mail server with password=<redacted>",
            "logged in with token=<redacted>")
        shown = json.loads(self.jobs("--format", "json", "show",
                                     str(self.job_id)))
        self.assertRedacted(json.dumps(shown), "password=<redacted>")
        self.assertEqual("logged in with token=<redacted>",
                         shown["progress"]["status"])

    def test_jobs_oops_show_and_list(self):
        [oops] = self.oopses()
        self.assertRedacted(self.jobs("oops", "show", oops["id"]),
                            "password=<redacted>")
        self.assertRedacted(self.jobs("--format", "json", "oops", "show",
                                      oops["id"]), "password=<redacted>")
        self.assertRedacted(self.jobs("oops", "list"), "password=<redacted>")

    def test_what_was_written_unredacted_is_hidden_when_shown(self):
        # A report filed before the name was configured, and a log row
        # written by hand: the commands hide them anyway.
        try:
            raise ValueError("db password=%s" % SECRET)
        except ValueError:
            report = ErrorReporter(self.config.error_dir, "T-old").raising(
                None, [("api_password", SECRET)])
        with open(glob.glob(os.path.join(
                self.config.error_dir, "*", report["id"]))[0], "rb") as f:
            self.assertIn(SECRET.encode(), f.read())
        self.assertRedacted(self.jobs("oops", "show", report["id"]),
                            "db password=<redacted>",
                            "'api_password': '<redacted>'")
        self.store.execute(
            "UPDATE job SET log = ? WHERE id = ?",
            ("token: %s via postgres://app:%s@db/app" % (SECRET, SECRET),
             self.job_id))
        transaction.commit()
        self.assertRedacted(self.jobs("show", str(self.job_id)),
                            "token: <redacted> via postgres://app:<redacted>"
                            "@db/app")
