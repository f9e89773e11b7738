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

import base64
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
        self.run_section()

    def run_section(self):
        """Commit, run do_foo with run_jobs.py and a --log-file: keep its
        stderr and log file."""
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


LEAKED = "Zx9-leaked-9xZ"
BASIC = base64.b64encode(("api:%s" % LEAKED).encode()).decode()


@on_each_database
class TestSecretsFoundByTheirLook(DatabaseTestCase):
    """Secrets that no configured ``name=`` gives away: Authorization
    headers (bearer and basic), a URI's password, a PEM private key; and
    the wider default names (``pwd``, ``private_key``, ``bearer``,
    ``session``, ``cookie`` locals; an ``auth`` OOPS variable). The job
    (DoFooJob with ``leak``, `jobs.testing.leaks`) logs each and fails."""

    def setUp(self):
        super().setUp()
        self.job = self.factory.makeDoFooJob(leak=LEAKED)
        self.run_section()
        self.assertEqual("Failed", self.job.status.title)

    run_section = TestSecretsAreRedacted.run_section
    jobs = TestSecretsAreRedacted.jobs

    def assertHidden(self, text, *shown):
        self.assertThat(text, Not(Contains(LEAKED)))
        self.assertThat(text, Not(Contains(BASIC)))
        for fragment in shown:
            self.assertThat(text, Contains(fragment))

    # What stands where the secrets were, in each outlet's text.
    LINES = ("GET /v1/items with Authorization: <redacted>",
             "Connecting to amqp://jobs:<redacted>@queue/jobs",
             "-----BEGIN RSA PRIVATE KEY-----<redacted>-----END RSA"
             " PRIVATE KEY-----")

    def test_bearer_and_basic_headers_uri_passwords_and_pem_keys_in_logs(
            self):
        for text in (self.stderr, self.log_file, self.job.log):
            self.assertHidden(text, *self.LINES)
        self.assertEqual(2, self.job.log.count(
            "with Authorization: <redacted>"))

    def test_the_oops_file_hides_the_wider_names_and_the_headers(self):
        [path] = glob.glob(os.path.join(self.config.error_dir, "*", "OOPS-*"))
        with open(path, "rb") as f:
            written = f.read()
        self.assertNotIn(LEAKED.encode(), written)
        self.assertNotIn(BASIC.encode(), written)
        [oops] = self.oopses()
        self.assertEqual(
            ["<redacted>"] * 6,
            [oops["locals"][name] for name in (
                "pwd", "private_key", "bearer", "session", "cookie")]
            + [oops["req_vars"]["auth"]])
        self.assertEqual("The API refused Authorization: <redacted>",
                         oops["value"])
        self.assertHidden(oops["log_tail"], *self.LINES)

    def test_jobs_show_and_jobs_oops_show(self):
        self.assertHidden(self.jobs("show", str(self.job.job_id)),
                          *self.LINES)
        self.assertHidden(self.jobs("--format", "json", "show",
                                    str(self.job.job_id)),
                          "Authorization: <redacted>")
        [oops] = self.oopses()
        self.assertHidden(self.jobs("oops", "show", oops["id"]),
                          "Authorization: <redacted>")
        self.assertHidden(self.jobs("--format", "json", "oops", "show",
                                    oops["id"]), "Authorization: <redacted>")

    def test_the_default_names_are_the_schemas(self):
        from jobs.redaction import DEFAULT_NAMES
        self.assertEqual(DEFAULT_NAMES, self.config.redact)
