"""The dashboard in a real browser: `jobs web` started as a process on a
loopback port over PostgreSQL, driven by headless Chromium (Debian's
chromium and chromium-driver, through selenium), one browser session for
every page. Each page's numbers are checked against the database, a
retry from the detail page, a POST without CSRF token, authentication;
a screenshot of each page goes to the test's output folder
(``$JOBS_TEST_OUTPUT``, default ``var/test-output/<test>`` in the
checkout).

bin/test installs chromium when it is missing; without it this test
fails, saying so — it never skips.
"""

import base64
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

import fixtures
import transaction

from jobs.cli.schedules import schedule_rows
from jobs.interfaces.job import JobStatus
from jobs.model import workers
from jobs.testing.script import ROOT
from jobs.web.auth import hash_password
from tests.web.test_views import DashboardTestCase

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
# The flags of a headless Chromium on a machine with no network but
# loopback (no background connections, no first-run, a fresh profile).
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
    "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--window-size=1280,1000")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def output_folder(test_id):
    folder = os.path.join(
        os.environ.get("JOBS_TEST_OUTPUT")
        or os.path.join(ROOT, "var", "test-output"),
        re.sub(r"[^\w.-]+", "_", test_id))
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    return folder


class Server(fixtures.Fixture):
    """``jobs web`` in a process of its own, on a free loopback port."""

    def __init__(self, config_path):
        super().__init__()
        self.config_path = config_path

    def _setUp(self):
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.process = subprocess.Popen(
            [sys.executable, "-m", "jobs", "web", "--listen",
             "127.0.0.1:%d" % self.port],
            env=dict(os.environ, JOBS_CONFIG=self.config_path),
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT)
        self.addCleanup(self._stop)
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), 1).close()
                return
            except OSError:
                if self.process.poll() is not None or \
                        time.monotonic() > deadline:
                    raise RuntimeError("jobs web did not start: %s" % (
                        self.process.stdout.read().decode()))
                time.sleep(0.1)

    def _stop(self):
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process.stdout.close()


class Browser(fixtures.Fixture):
    """A headless Chromium session (selenium) with a fresh profile."""

    def _setUp(self):
        missing = [path for path in (CHROMIUM, CHROMEDRIVER)
                   if not os.access(path, os.X_OK)]
        if missing:
            raise RuntimeError(
                "The browser tests need Debian's chromium and chromium-driver"
                " (%s missing): bin/test installs them, or run `apt-get"
                " install chromium chromium-driver`." % ", ".join(missing))
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for flag in CHROMIUM_FLAGS:
            options.add_argument(flag)
        profile = tempfile.mkdtemp(prefix="jobs-chromium-")
        self.addCleanup(shutil.rmtree, profile, True)
        options.add_argument("--user-data-dir=%s" % profile)
        self.driver = webdriver.Chrome(service=Service(CHROMEDRIVER),
                                       options=options)
        self.addCleanup(self.driver.quit)
        self.driver.set_page_load_timeout(60)


class TestDashboardInABrowser(DashboardTestCase):

    database_kind = "postgresql"
    __test__ = True

    def setUp(self):
        super().setUp()
        self.folder = output_folder(self.id())
        self.browser = self.useFixture(Browser()).driver

    def shot(self, name):
        path = os.path.join(self.folder, "%s.png" % name)
        self.browser.save_screenshot(path)
        self.assertTrue(os.path.getsize(path) > 1000, path)

    def wait_for(self, condition):
        from selenium.webdriver.support.ui import WebDriverWait
        WebDriverWait(self.browser, 30).until(lambda driver: condition())

    def text(self, css):
        from selenium.webdriver.common.by import By
        return self.browser.find_element(By.CSS_SELECTOR, css).text

    def config_with(self, text):
        path = os.path.join(self.useFixture(fixtures.TempDir()).path,
                            "web.conf")
        with open(path, "w") as f:
            f.write("[meta]\nextends: %s\n\n%s" % (self.config_fixture.path,
                                                   text))
        return path

    def test_every_page_its_actions_and_its_guards(self):
        from selenium.webdriver.common.by import By
        made = self.make_jobs()
        [oops] = self.oopses()
        by_status = self.status_counts()
        server = self.useFixture(Server(self.config_fixture.path))
        browser = self.browser

        # Overview: the totals per status and the ready queue.
        browser.get(server.url + "/")
        for status in JobStatus.items:
            self.assertEqual(
                str(by_status.get(status.value, 0)),
                self.text('tfoot td[data-status="%s"]' % status.name.lower()),
                status)
        self.assertEqual("2", self.text("#ready"))
        self.assertEqual("1", self.text("#hour-failed"))
        self.shot("overview")

        # The job list, then filtered by status through the form.
        browser.get(server.url + "/jobs")
        rows = browser.find_elements(By.CSS_SELECTOR, "#jobs tbody tr")
        self.assertEqual(sum(by_status.values()), len(rows))
        browser.find_element(
            By.CSS_SELECTOR, 'input[name="status"][value="failed"]').click()
        browser.find_element(By.CSS_SELECTOR, "#filters button").click()
        self.wait_for(lambda: "status=failed" in browser.current_url)
        rows = browser.find_elements(By.CSS_SELECTOR, "#jobs tbody tr")
        self.assertEqual([str(made["failed"].job_id)],
                         [row.get_attribute("data-id") for row in rows])
        self.shot("jobs")

        # The failed job's page, its OOPS report, and a retry.
        browser.get(server.url + "/jobs/%d" % made["failed"].job_id)
        self.assertEqual("failed", self.text("#status"))
        self.assertIn(oops["id"], self.text("#reports"))
        self.shot("job")
        browser.find_element(By.ID, "action-retry").click()
        self.wait_for(lambda: "message=" in browser.current_url)
        self.assertIn("is now Waiting", self.text("#message"))
        self.store.invalidate()
        self.assertEqual(JobStatus.WAITING, made["failed"].job.status)

        # A POST without the CSRF token, from the page: refused.
        status = browser.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "fetch(arguments[0], {method: 'POST', body: new URLSearchParams("
            "{action: 'cancel'})}).then(r => done(r.status));",
            server.url + "/jobs/%d/action" % made["waiting"].job_id)
        self.assertEqual(400, status)
        self.store.invalidate()
        self.assertEqual(JobStatus.WAITING, made["waiting"].job.status)

        # OOPS summary: the index's count.
        browser.get(server.url + "/oops")
        indexed = self.store.execute(
            "SELECT count(*) FROM oops_report").get_one()[0]
        transaction.abort()
        self.assertEqual(str(indexed), self.text("#groups td.count"))
        self.shot("oops")
        browser.get(server.url + "/oops/%s" % oops["id"])
        self.assertIn("Something broke (7).", self.text("#report"))
        self.shot("oops_report")

        # Workers and schedules: one table row per runner, per schedule.
        workers.register(self.store, "alpha", 4242, "worker", ["do_foo"],
                         30, 3600)
        transaction.commit()
        expected = {"workers": len(workers.find(self.store)),
                    "schedules": len(schedule_rows(self.config, self.store))}
        transaction.abort()
        for name in ("workers", "schedules"):
            browser.get(server.url + "/" + name)
            rows = browser.find_elements(By.CSS_SELECTOR, "#rows tbody tr")
            if expected[name]:
                self.assertEqual(expected[name], len(rows))
            else:
                self.assertEqual("None.", rows[0].text)
            if name == "workers":
                self.assertIn("alpha", self.text("#rows"))
            self.shot(name)

        # With basic authentication configured, no credentials, no page.
        guarded = self.useFixture(Server(self.config_with(
            "[web]\nenabled: true\nuser: ops\npassword_hash: %s\n"
            % hash_password("s3cret"))))
        browser.get(guarded.url + "/")
        # Chromium waits for credentials over an empty page.
        self.assertEqual([], browser.find_elements(By.CSS_SELECTOR, "h1"))
        self.assertNotIn("Overview", browser.page_source)
        with self.assertRaises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(guarded.url + "/jobs", timeout=10)
        self.assertEqual(401, refused.exception.code)
        request = urllib.request.Request(guarded.url + "/jobs", headers={
            "Authorization": "Basic " + base64.b64encode(
                b"ops:s3cret").decode()})
        self.assertEqual(200, urllib.request.urlopen(request,
                                                     timeout=10).status)
        browser.get(guarded.url.replace("http://", "http://ops:s3cret@")
                    + "/")
        self.assertEqual("Overview", self.text("h1"))

