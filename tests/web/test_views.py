"""Every dashboard view through WebTest, on both databases: what each page
shows checked against the database, the actions, CSRF, authentication."""

import base64
import json
import re

import fixtures
import transaction
from prometheus_client.parser import text_string_to_metric_families
from testtools.matchers import Contains, Not
from webtest import TestApp

from jobs import counts, kinds
from jobs.interfaces.job import JobStatus
from jobs.log import DevNullLogger
from jobs.model.job import Job
from jobs.model import workers
from jobs.model.dependencies import add_dependencies
from jobs.cli.schedules import schedule_rows
from jobs.runner import JobRunner
from jobs.sections import error_reporter_for
from jobs.testing.foojob import DoBarJob
from jobs.testing.testcase import DatabaseTestCase, on_each_database
from jobs.web import make_app
from jobs.web.auth import hash_password, verify_password

WEB = "[web]\nenabled: true\nrefresh: 0\n"


class DashboardTestCase(DatabaseTestCase):
    """A database holding waiting, running, completed, failed (with an
    OOPS) and cancelled jobs, and the dashboard over it."""

    config_extra = WEB

    def setUp(self):
        super().setUp()
        counts.forget()
        kinds.forget()
        self.addCleanup(counts.forget)
        self.addCleanup(kinds.forget)

    def app(self, **environ):
        environ.setdefault("REMOTE_ADDR", "127.0.0.1")
        return TestApp(make_app(self.config), extra_environ=environ)

    def make_jobs(self):
        made = dict(
            waiting=self.factory.makeDoFooJob(),
            running=self.factory.makeDoFooJob(),
            completed=self.factory.makeDoFooJob(
                say="hello from the job",
                progress=[[2, 4, "copying", "copy"], [1, 1, None, "index"]]),
            failed=self.factory.makeDoFooJob(raise_="error"),
            cancelled=self.factory.makeDoFooJob(),
            bar=self.factory.makeDoFooJob(job_class=DoBarJob))
        transaction.commit()
        JobRunner([made["completed"], made["failed"]], DevNullLogger(),
                  error_reporter=error_reporter_for("do_foo")).runAll()
        made["cancelled"].job.cancel()
        self.store.execute(
            "UPDATE job SET status = 1, attempt_count = 1, lease_expires = ?"
            " WHERE id = ?", ("2999-01-01 00:00:00", made["running"].job_id))
        transaction.commit()
        self.store.invalidate()
        return made

    def status_counts(self):
        return dict(self.store.execute(
            "SELECT status, count(*) FROM job GROUP BY status"))

    def csrf(self, page):
        return re.search(r'name="csrf_token" value="([^"]+)"',
                         page.text).group(1)


@on_each_database
class TestPages(DashboardTestCase):

    def test_overview_counts_match_the_database(self):
        self.make_jobs()
        page = self.app().get("/")
        by_status = self.status_counts()
        for status in JobStatus.items:
            cell = re.search(
                r'<tr data-section="all">.*?<td data-status="%s">(\d+)</td>'
                % status.name.lower(), page.text, re.S)
            self.assertEqual(by_status.get(status.value, 0),
                             int(cell.group(1)), status)
        foo = re.search(r'<tr data-section="do_foo">(.*?)</tr>', page.text,
                        re.S).group(1)
        self.assertThat(foo, Contains(
            '<td data-status="failed"><a href="http://localhost/jobs?section'
            '=do_foo&amp;status=failed">1</a>'))
        self.assertThat(page.text, Contains('<span id="hour-completed">1'
                                            '</span> completed'))
        self.assertThat(page.text, Contains('<span id="hour-failed">1'))
        self.assertThat(page.text, Contains("<svg"))
        # Waiting: the do_foo job and the do_bar job.
        self.assertThat(page.text, Contains('<dd id="ready">2</dd>'))

    def test_job_list_filters_and_pages(self):
        made = self.make_jobs()
        app = self.app()
        page = app.get("/jobs", {"status": "failed"})
        self.assertEqual([made["failed"].job_id], listed(page))
        page = app.get("/jobs", {"section": "do_bar"})
        self.assertEqual([made["bar"].job_id], listed(page))
        page = app.get("/jobs", {"kind": DoBarJob.job_kind()})
        self.assertEqual([made["bar"].job_id], listed(page))
        [oops] = self.oopses()
        from jobs.errorlog import fingerprint
        page = app.get("/jobs", {"fingerprint": fingerprint(oops)})
        self.assertEqual([made["failed"].job_id], listed(page))
        page = app.get("/jobs", {"since": "1h"})
        self.assertEqual(6, len(listed(page)))
        page = app.get("/jobs", {"until": "1h"})
        self.assertEqual([], listed(page))
        page = app.get("/jobs", {"since": "someday"})
        self.assertThat(page.text, Contains("Bad date"))
        # Pages of 2, newest first, by id.
        self.useFixture(fixtures.MonkeyPatch("jobs.web.views.PAGE_SIZE", 2))
        ids = sorted((job.job_id for job in made.values()), reverse=True)
        seen, page = [], app.get("/jobs")
        while True:
            seen += listed(page)
            if 'id="next"' not in page.text:
                break
            page = page.click(linkid="next")
        self.assertEqual(ids, seen)

    def test_job_detail_shows_everything(self):
        made = self.make_jobs()
        app = self.app()
        page = app.get("/jobs/%d" % made["completed"].job_id)
        self.assertThat(page.text, Contains(
            '<strong id="status" class="status completed">completed'))
        self.assertThat(page.text, Contains('<td data-field="attempt_count">'
                                            '1</td>'))
        self.assertThat(page.text, Contains("hello from the job"))
        self.assertThat(page.text, Contains('<span class="bar-name">copy'))
        self.assertThat(page.text, Contains("width: 50.0%"))
        self.assertThat(page.text, Contains("json_data"))
        page = app.get("/jobs/%d" % made["failed"].job_id)
        [oops] = self.oopses()
        self.assertThat(page.text, Contains(oops["id"]))
        self.assertThat(page.text, Contains('id="action-retry"'))
        self.assertThat(page.text, Contains(
            "<h3>Waits for</h3><p>nothing</p>"))
        app.get("/jobs/999999", status=404)

    def test_retry_from_the_detail_page_makes_the_job_waiting(self):
        made = self.make_jobs()
        app = self.app()
        page = app.get("/jobs/%d" % made["failed"].job_id)
        done = page.forms["actions"].submit("action", value="retry").follow()
        self.assertThat(done.text, Contains("is now Waiting."))
        self.store.invalidate()
        self.assertEqual(JobStatus.WAITING, made["failed"].job.status)

    def test_a_post_without_csrf_token_is_refused(self):
        made = self.make_jobs()
        app = self.app()
        app.get("/jobs/%d" % made["failed"].job_id)
        app.post("/jobs/%d/action" % made["failed"].job_id,
                 {"action": "retry"}, status=400)
        app.post("/jobs/%d/action" % made["failed"].job_id,
                 {"action": "retry", "csrf_token": "forged"}, status=400)
        self.store.invalidate()
        self.assertEqual(JobStatus.FAILED, made["failed"].job.status)
        # And actions are POST only.
        app.get("/jobs/%d/action" % made["failed"].job_id, status=404)

    def test_bulk_cancel_by_filter(self):
        made = self.make_jobs()
        app = self.app()
        page = app.get("/jobs", {"section": "do_foo", "status": "waiting"})
        done = page.forms["bulk"].submit("action", value="cancel").follow()
        self.assertThat(done.text, Contains("1 jobs cancelled."))
        self.store.invalidate()
        self.assertEqual(JobStatus.CANCELLED, made["waiting"].job.status)
        self.assertEqual(JobStatus.WAITING, made["bar"].job.status)
        self.assertEqual(JobStatus.RUNNING, made["running"].job.status)
        # A bulk action needs a filter.
        app.post("/jobs/action", {"action": "cancel",
                                  "csrf_token": self.csrf(page)}, status=400)

    def test_oops_pages(self):
        made = self.make_jobs()
        app = self.app()
        [oops] = self.oopses()
        page = app.get("/oops")
        self.assertThat(page.text, Contains('<td class="count">1</td>'))
        self.assertThat(page.text, Contains("ValueError at foojob.py"))
        page = app.get("/oops/%s" % oops["id"])
        self.assertThat(page.text, Contains("Something broke (7)."))
        self.assertThat(page.text, Contains('id="traceback"'))
        # The local is redacted in the report, and on the page.
        self.assertThat(page.text, Not(Contains("hunter2")))
        self.store.execute(
            "INSERT INTO oops_report (id, reported, job_id, section,"
            " exception_type, exception_value, fingerprint, host) VALUES"
            " ('OOPS-remote', '2026-11-01 10:00:00', ?, 'do_foo',"
            " 'KeyError', 'x', 'KeyError at a.py:1 in run', 'beta')",
            (made["failed"].job_id,))
        transaction.commit()
        page = app.get("/oops/OOPS-remote")
        self.assertThat(page.text, Contains("is on host beta"))
        app.get("/oops/OOPS-nothing", status=404)

    def test_workers_page_lists_the_runners_and_what_they_hold(self):
        app = self.app()
        self.assertThat(app.get("/workers").text, Contains("None."))
        made = self.make_jobs()
        worker = workers.register(self.store, "alpha", 4242, "worker",
                                  ["do_foo"], 30, 3600)
        workers.beat(self.store, worker, [(made["running"].job_id, 1)])
        transaction.commit()
        page = app.get("/workers")
        self.assertThat(page.text, Contains("<td>alpha</td>"))
        self.assertThat(page.text, Contains("<td>4242</td>"))
        self.assertThat(page.text, Contains("<td>live</td>"))
        self.assertThat(page.text, Contains(
            "%d#1 running" % made["running"].job_id))

    def test_schedules_page_lists_the_configured_schedules(self):
        page = self.app().get("/schedules")
        rows = schedule_rows(self.config, self.store)
        self.assertThat(page.text, Contains("<h1>Schedules</h1>"))
        for row in rows:
            self.assertThat(page.text, Contains("<td>%s</td>"
                                                % row["schedule"]))
        if not rows:
            self.assertThat(page.text, Contains("None."))

    def test_dependency_tree_and_result(self):
        first, second, third = (self.factory.makeDoFooJob()
                                for _ in range(3))
        add_dependencies(self.store, second.job_id, [first.job_id])
        add_dependencies(self.store, third.job_id, [second.job_id])
        self.store.execute("UPDATE job SET result = ? WHERE id = ?",
                           (json.dumps({"answer": 42}), first.job_id))
        transaction.commit()
        page = self.app().get("/jobs/%d" % second.job_id)
        waits, waited = page.text.split("<h3>Waited for by</h3>")
        self.assertThat(waits, Contains("job %d</a>" % first.job_id))
        self.assertThat(waited, Contains("job %d</a>" % third.job_id))
        self.assertThat(page.text, Contains('data-field="status">blocked'))
        page = self.app().get("/jobs/%d" % first.job_id)
        self.assertThat(page.text, Contains('"answer": 42'))

    def drop(self, table):
        transaction.abort()
        self.store.execute("DROP TABLE %s" % table)
        transaction.commit()

    def drop_column(self, table, column):
        transaction.abort()
        self.store.execute("ALTER TABLE %s DROP COLUMN %s" % (table, column))
        transaction.commit()

    def test_metrics_parse(self):
        self.make_jobs()
        page = self.app().get("/metrics")
        names = {family.name for family in
                 text_string_to_metric_families(page.text)}
        self.assertTrue({"jobs_jobs", "jobs_ready",
                         "jobs_oldest_ready_age_seconds"} <= names, names)

    def test_secrets_are_redacted(self):
        job = self.factory.makeDoFooJob(raise_="error", secret="s3cret-pw")
        transaction.commit()
        JobRunner([job], DevNullLogger(),
                  error_reporter=error_reporter_for("do_foo")).runAll()
        page = self.app().get("/jobs/%d" % job.job_id)
        self.assertThat(page.text, Not(Contains("s3cret-pw")))
        self.assertThat(page.text, Contains("&lt;redacted&gt;"))


def listed(page):
    return [int(found) for found in re.findall(r'<tr data-id="(\d+)">',
                                               page.text)]


@on_each_database
class TestAuthentication(DashboardTestCase):

    config_extra = WEB + "user: ops\npassword_hash: %s\n" % hash_password(
        "correct horse")

    def test_unauthenticated_access_is_refused(self):
        app = self.app()
        response = app.get("/", status=401)
        self.assertEqual('Basic realm="jobs"',
                         response.headers["WWW-Authenticate"])
        app.get("/metrics", status=401)
        app.post("/jobs/1/action", {"action": "retry"}, status=401)
        bad = base64.b64encode(b"ops:wrong").decode()
        app.get("/", headers={"Authorization": "Basic " + bad}, status=401)
        good = base64.b64encode(b"ops:correct horse").decode()
        page = app.get("/", headers={"Authorization": "Basic " + good})
        self.assertThat(page.text, Contains('<span class="user">ops</span>'))


@on_each_database
class TestProxyAuthentication(DashboardTestCase):

    config_extra = WEB + "trusted_header: X-Remote-User\n"

    def test_the_header_counts_from_a_trusted_proxy_only(self):
        self.app().get("/", status=403)
        page = self.app().get("/", headers={"X-Remote-User": "alice"})
        self.assertThat(page.text, Contains('<span class="user">alice'))
        self.app(REMOTE_ADDR="192.0.2.7").get(
            "/", headers={"X-Remote-User": "alice"}, status=403)


class TestPasswords(fixtures.TestWithFixtures):

    def test_hash_and_verify(self):
        hashed = hash_password("pw")
        self.assertTrue(hashed.startswith("scrypt$16384$8$1$"))
        self.assertTrue(verify_password("pw", hashed))
        self.assertFalse(verify_password("pW", hashed))
        self.assertFalse(verify_password("pw", "md5$nothing"))
        self.assertNotEqual(hashed, hash_password("pw"))


class TestWebCommand(DatabaseTestCase):
    """`jobs web` refuses what it must not serve, and hashes passwords."""

    database_kind = "sqlite"
    __test__ = True

    def jobs(self, *argv, stdin=""):
        import io

        from jobs.cli import main
        out, err = io.StringIO(), io.StringIO()
        with fixtures.MonkeyPatch("sys.stdout", out), \
                fixtures.MonkeyPatch("sys.stderr", err), \
                fixtures.MonkeyPatch("sys.stdin", io.StringIO(stdin)):
            code = main(list(argv))
        return code, out.getvalue(), err.getvalue()

    def config_file(self, text):
        import os
        path = os.path.join(self.useFixture(fixtures.TempDir()).path,
                            "web.conf")
        with open(path, "w") as f:
            f.write("[meta]\nextends: %s\n\n%s" % (self.config_fixture.path,
                                                   text))
        return path

    def test_off_unless_enabled(self):
        code, _, err = self.jobs("web")
        self.assertEqual(2, code)
        self.assertThat(err, Contains("The dashboard is off: set [web]"
                                      " enabled: true"))

    def test_no_authentication_no_other_address_than_loopback(self):
        path = self.config_file("[web]\nenabled: true\nlisten: 0.0.0.0:8080\n")
        code, _, err = self.jobs("--config", path, "web")
        self.assertEqual(2, code)
        self.assertThat(err, Contains("Refusing to listen on 0.0.0.0 with no"
                                      " authentication"))
        code, _, err = self.jobs("--config", path, "web", "--listen",
                                 "192.0.2.1:80")
        self.assertThat(err, Contains("Refusing to listen on 192.0.2.1"))
        code, _, err = self.jobs("--config", path, "web", "--listen", "nope")
        self.assertThat(err, Contains("--listen 'nope' is not HOST:PORT."))

    def test_hash_password_reads_stdin(self):
        code, out, err = self.jobs("web", "--hash-password",
                                   stdin="correct horse\n")
        self.assertEqual(0, code, err)
        self.assertTrue(verify_password("correct horse", out.strip()))
        code, _, err = self.jobs("web", "--hash-password", stdin="\n")
        self.assertThat(err, Contains("An empty password is not a password."))

    def test_user_and_hash_go_together(self):
        path = self.config_file("[web]\nenabled: true\nuser: ops\n")
        code, _, err = self.jobs("--config", path, "web")
        self.assertEqual(2, code)
        self.assertThat(err, Contains("[web] user and password_hash go"
                                      " together"))
