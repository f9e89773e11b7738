"""OOPS reports: contents, redaction, reading back, failure to write."""

import os
import stat

import fixtures
from testtools.matchers import Contains, Not, StartsWith

from jobs.errorlog import ErrorReporter, Redactor, read_report
from jobs.errors import NotFoundError
from jobs.testing.testcase import TestCase


class Unprintable(Exception):
    def __str__(self):
        raise RuntimeError("no str for you")


def fail_with_secret():
    api_token = "s3cr3t-token"  # noqa: F841 (the report shows locals)
    count = 3
    raise ValueError("failed with password=hunter2 after %d tries" % count)


class TestErrorReporter(TestCase):

    def setUp(self):
        super().setUp()
        self.error_dir = self.useFixture(fixtures.TempDir()).path
        self.reporter = ErrorReporter(
            self.error_dir, "T-do_foo", ("password", "token"))

    def raise_and_report(self, function, **extra):
        try:
            function()
        except Exception:
            return self.reporter.raising(
                None, [("job_id", 5), ("db_password", "pw")], **extra)

    def test_report_is_written_and_read_back(self):
        report = self.raise_and_report(fail_with_secret, job_id=5)
        self.assertThat(report["id"], StartsWith("OOPS-"))
        back = read_report(self.error_dir, report["id"])
        self.assertEqual("ValueError", back["type"])
        self.assertEqual("T-do_foo", back["reporter"])
        self.assertEqual(5, back["job_id"])
        self.assertEqual({"job_id": "5", "db_password": "<redacted>"},
                         back["req_vars"])
        self.assertIsNotNone(back["hostname"])
        self.assertIsNotNone(back["time"])
        self.assertThat(back["tb_text"], Contains("fail_with_secret"))

    def test_secrets_are_redacted_everywhere(self):
        report = self.raise_and_report(fail_with_secret)
        back = read_report(self.error_dir, report["id"])
        self.assertEqual("<redacted>", back["locals"]["api_token"])
        self.assertEqual("3", back["locals"]["count"])
        self.assertEqual("failed with password=<redacted> after 3 tries",
                         back["value"])
        self.assertThat(repr(back), Not(Contains("hunter2")))
        self.assertThat(repr(back), Not(Contains("s3cr3t")))

    def test_exception_whose_str_raises(self):
        def fail():
            raise Unprintable()
        report = self.raise_and_report(fail)
        self.assertEqual("Unprintable", report["type"])
        self.assertIsNotNone(report["id"])

    def test_long_locals_are_truncated(self):
        def fail():
            big = "x" * 10000
            raise ValueError(len(big))
        report = self.raise_and_report(fail)
        self.assertEqual(203, len(report["locals"]["big"]))

    def test_unwritable_error_dir_logs_the_report(self):
        os.chmod(self.error_dir, stat.S_IRUSR | stat.S_IXUSR)
        self.addCleanup(os.chmod, self.error_dir, stat.S_IRWXU)
        if os.access(self.error_dir, os.W_OK):
            # root ignores permissions: use a path under a file instead.
            blocker = os.path.join(self.error_dir, "blocker")
            os.chmod(self.error_dir, stat.S_IRWXU)
            open(blocker, "w").close()
            self.reporter = ErrorReporter(
                os.path.join(blocker, "oops"), "T", ())
        logged = self.useFixture(fixtures.FakeLogger())
        report = self.raise_and_report(fail_with_secret)
        self.assertIsNone(report.get("id"))
        self.assertThat(logged.output, Contains("Could not write OOPS report"))
        self.assertThat(logged.output, Contains("ValueError"))

    def test_read_unknown_report(self):
        self.assertRaises(NotFoundError, read_report, self.error_dir,
                          "OOPS-doesnotexist")
        self.assertRaises(NotFoundError, read_report, self.error_dir,
                          "../../etc/passwd")

    def test_captured_oopses_fixture(self):
        from jobs.testing.fixtures import CapturedOopsFixture
        captured = self.useFixture(CapturedOopsFixture())
        report = self.raise_and_report(fail_with_secret)
        self.assertEqual([report["id"]], [r["id"] for r in captured.oopses])

    def test_message_report(self):
        report = self.reporter.message("LogMessage", "disk is full",
                                       [("script_name", "run_jobs")])
        back = read_report(self.error_dir, report["id"])
        self.assertEqual(("LogMessage", "disk is full"),
                         (back["type"], back["value"]))


class TestRedactor(TestCase):

    def test_text_forms(self):
        redactor = Redactor(("password", "token"))
        for text, expected in [
                ("password=abc", "password=<redacted>"),
                ("{'password': 'abc', 'x': 1}",
                 "{'password': <redacted>, 'x': 1}"),
                ('auth_token: "abc def"', "auth_token: <redacted>"),
                ("nothing secret here", "nothing secret here"),
        ]:
            self.assertEqual(expected, redactor.text(text))

    def test_no_names_redacts_nothing(self):
        self.assertEqual("password=abc", Redactor(()).text("password=abc"))


class TestRedactor(TestCase):

    def setUp(self):
        super().setUp()
        self.redactor = Redactor(("password", "token"))

    def test_uri_passwords(self):
        self.assertEqual(
            "postgres://app:<redacted>@db:5432/app and https://host/path",
            self.redactor.text(
                "postgres://app:s3cret@db:5432/app and https://host/path"))

    def test_data_hides_scalars_under_secret_names_and_secrets_in_text(self):
        self.assertEqual(
            {"api_token": "<redacted>", "note": "password=<redacted>",
             "tokens": {"status": "ok"}, "lines": ["token: <redacted>", 3]},
            self.redactor.data(
                {"api_token": "abc", "note": "password=hunter2",
                 "tokens": {"status": "ok"}, "lines": ["token: abc", 3]}))
