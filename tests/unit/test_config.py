"""Configuration: instances, job sections, and errors naming the culprit."""

import os

import fixtures
from testtools.matchers import Contains

from jobs.config import SCHEMA_PATH, load, resolve_instance
from jobs.errors import ConfigError
from jobs.testing.testcase import TestCase


class TestConfig(TestCase):

    def write(self, text, name="app.conf"):
        folder = self.useFixture(fixtures.TempDir()).path
        path = os.path.join(folder, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def extending_testrunner(self, text):
        from jobs.config import resolve_instance
        path = self.write("")
        base = os.path.relpath(resolve_instance("testrunner"),
                               os.path.dirname(path))
        with open(path, "w") as f:
            f.write("[meta]\nextends: %s\n\n%s" % (base, text))
        return path

    def test_instances_load(self):
        development = load("development")
        self.assertEqual(["demo"], development.job_section_names)
        self.assertThat(development.database_uri, Contains("sqlite:/"))
        testrunner = load("testrunner")
        self.assertEqual(["demo", "do_foo", "do_bar"],
                         testrunner.job_section_names)
        section = testrunner.job_section("do_foo")
        self.assertEqual(("dofoo", "jobs.testing.foojob.IDoFooJobSource"),
                         (section.dbuser, section.source_interface))

    def test_application_adds_a_job_section(self):
        config = load(self.extending_testrunner(
            "[do_baz]\nsource_interface: app.IBaz\n"))
        self.assertIn("do_baz", config.job_section_names)
        section = config.job_section("do_baz")
        self.assertEqual((None, "JobRunner"),
                         (section.dbuser, section.runner_class))

    def test_database_uri_from_environment(self):
        self.useFixture(fixtures.EnvironmentVariable(
            "JOBS_DATABASE_URI", "postgres://db.example/x"))
        self.assertEqual("postgres://db.example/x",
                         load("testrunner").database_uri)

    def test_unknown_key_names_file_section_and_key(self):
        path = self.extending_testrunner(
            "[do_baz]\nsource_interface: app.IBaz\nsource_interfac: typo\n")
        error = self.assertRaises(ConfigError, load, path)
        self.assertThat(str(error), Contains(path))
        self.assertThat(str(error),
                        Contains("do_baz does not have a source_interfac key"))

    def test_section_that_is_neither_schema_nor_job(self):
        path = self.extending_testrunner("[databse]\nuri: x\n")
        error = self.assertRaises(ConfigError, load, path)
        self.assertEqual(
            "%s: [databse] is not a section of the schema, nor a job section"
            " (it sets no source_interface or tasks)." % path, str(error))

    def test_unknown_job_section(self):
        config = load("testrunner")
        error = self.assertRaises(ConfigError, config.job_section, "nope")
        self.assertThat(str(error), Contains("Unknown job section 'nope'"))
        self.assertThat(str(error), Contains("do_foo"))

    def test_missing_file(self):
        error = self.assertRaises(ConfigError, load, "/nonexistent/x.conf")
        self.assertEqual("Config file not found: /nonexistent/x.conf",
                         str(error))

    def test_malformed_file(self):
        path = self.write("this is not ini\n[x\n")
        error = self.assertRaises(ConfigError, load, path)
        self.assertThat(str(error), Contains("Malformed config file %s" % path))

    def test_unreadable_file(self):
        path = self.write("\xff\xfe[x]\n".encode("latin-1").decode("latin-1"))
        with open(path, "wb") as f:
            f.write(b"\xff\xfe[database]\n")
        error = self.assertRaises(ConfigError, load, path)
        self.assertThat(str(error), Contains("Cannot read config file"))

    def test_wrong_value_type(self):
        path = self.extending_testrunner("[database]\nuri: 42\n")
        self.useFixture(fixtures.EnvironmentVariable("JOBS_DATABASE_URI"))
        error = self.assertRaises(
            ConfigError, lambda: load(path).database_uri)
        self.assertThat(str(error), Contains("[database] uri: 42 is not a URI"))

    def test_celery_settings_and_section_options(self):
        config = load(self.extending_testrunner(
            "[celery]\nbroker_url: redis://127.0.0.1:6379/3\n"
            "time_limits: fast=1:5 slow=30.5:60\n\n"
            "[do_foo]\ncelery_dispatch: true\ntask_queue: fast\n"))
        celery = config.celery
        self.assertEqual(
            ("redis://127.0.0.1:6379/3", "jobs", "jobs_slow",
             {"fast": (1.0, 5.0), "slow": (30.5, 60.0)}),
            (celery.broker_url, celery.default_queue, celery.fallback_queue,
             celery.time_limits))
        self.assertEqual((None, None), celery.limits("other"))
        section = config.job_section("do_foo")
        self.assertEqual((True, "fast", 300.0), (
            section.celery_dispatch, section.task_queue,
            section.celery_sweep_grace))
        self.assertEqual((False, None),
                         (config.job_section("do_bar").celery_dispatch,
                          config.job_section("do_bar").task_queue))

    def test_worker_settings(self):
        workers = load("testrunner").workers
        self.assertEqual((10.0, 3, 30.0, 86400.0), (
            workers.beat_seconds, workers.lost_after_beats,
            workers.lost_after_seconds, workers.keep_lost_seconds))
        path = self.extending_testrunner(
            "[workers]\nbeat_seconds: 0.5\nlost_after_beats: 4\n"
            "keep_lost_seconds: 1\n")
        error = self.assertRaises(ConfigError, load, path)
        self.assertThat(str(error), Contains(
            "[workers] keep_lost_seconds: 1 is below 2.0"))

    def test_soft_limit_must_be_below_hard_limit(self):
        config = load(self.extending_testrunner(
            "[celery]\ntime_limits: q=10:5\n"))
        error = self.assertRaises(ConfigError, lambda: config.celery)
        self.assertThat(str(error), Contains(
            "[celery] time_limits: 'q=10:5' is not QUEUE=SOFT:HARD"))

    def test_celery_dispatch_must_be_true_or_false(self):
        path = self.extending_testrunner("[do_foo]\ncelery_dispatch: 3\n")
        error = self.assertRaises(ConfigError, lambda: load(path).job_section(
            "do_foo"))
        self.assertThat(str(error), Contains(
            "[do_foo] celery_dispatch: 3 is not true or false."))


class TestApplicationConfig(TestCase):
    """An application's own file, anywhere, extending the packaged base."""

    def folder(self):
        return self.useFixture(fixtures.TempDir()).path

    def write(self, folder, name, text):
        path = os.path.join(folder, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
        return path

    def test_extends_base_by_name_with_no_job_section(self):
        app = self.folder()
        path = self.write(app, "app.conf", "[meta]\nextends: base\n")
        config = load(path)
        self.useFixture(fixtures.EnvironmentVariable("JOBS_DATABASE_URI"))
        self.assertEqual([], config.job_section_names)
        # The schema's relative defaults are the application's folder's.
        self.assertEqual(
            ("sqlite:" + os.path.join(app, "var", "jobs.db"),
             os.path.join(app, "var", "oops"), os.path.join(app, "var", "lock")),
            (config.database_uri, config.error_dir, config.lock_dir))

    def test_relative_values_are_relative_to_the_file_that_sets_them(self):
        shared = self.folder()
        self.write(shared, "site/site.conf",
                   "[meta]\nextends: base\n\n[error_reports]\n"
                   "error_dir: oops-here\n")
        app = self.folder()
        path = self.write(app, "app.conf", "[meta]\nextends: %s\n\n"
                          "[database]\nuri: sqlite:data/app.db\n"
                          % os.path.join(shared, "site", "site.conf"))
        config = load(path)
        self.useFixture(fixtures.EnvironmentVariable("JOBS_DATABASE_URI"))
        self.assertEqual(
            ("sqlite:" + os.path.join(app, "data", "app.db"),
             os.path.join(shared, "site", "oops-here"),
             os.path.join(app, "var", "lock")),
            (config.database_uri, config.error_dir, config.lock_dir))

    def test_absolute_and_relative_extends(self):
        shared = self.folder()
        base = self.write(shared, "conf/site.conf",
                          "[meta]\nextends: base\n\n[app_job]\n"
                          "source_interface: app.IAppJobSource\n")
        app = self.folder()
        for extends in (base, os.path.relpath(base, app)):
            path = self.write(app, "app.conf",
                              "[meta]\nextends: %s\n" % extends)
            self.assertEqual(["app_job"], load(path).job_section_names,
                             extends)

    def test_an_unknown_instance_is_one_line_naming_the_known_ones(self):
        error = self.assertRaises(ConfigError, load, "nosuch")
        self.assertThat(str(error), Contains("No config instance 'nosuch'"))
        self.assertThat(str(error), Contains("base, demo, development"))
        app = self.folder()
        path = self.write(app, "app.conf", "[meta]\nextends: nosuch\n")
        error = self.assertRaises(ConfigError, load, path)
        self.assertThat(str(error), Contains(
            "%s: [meta] extends: No config instance 'nosuch'" % path))

    def test_installed_without_jobs_config_says_what_to_do(self):
        # Installed, there is no checkout and so no development instance.
        self.useFixture(fixtures.MonkeyPatch(
            "jobs.instances._checkout_configs", lambda: None))
        self.useFixture(fixtures.EnvironmentVariable("JOBS_CONFIG"))
        self.useFixture(fixtures.EnvironmentVariable("JOBS_CONFIGS_DIR"))
        error = self.assertRaises(ConfigError, load)
        self.assertEqual(
            "No configuration: set JOBS_CONFIG (or --config) to your"
            " application's .conf file, which may [meta] extends: base (see"
            " the README's quickstart).", str(error))
        self.assertEqual(["schema-lazr.conf"], [
            name for name in os.listdir(os.path.dirname(SCHEMA_PATH))
            if name.endswith(".conf")])
        self.assertTrue(os.path.isfile(resolve_instance("base")))


class TestComponentsPath(TestCase):

    def test_the_applications_folder_goes_on_sys_path(self):
        import sys
        from jobs.registration import add_import_paths
        app = self.useFixture(fixtures.TempDir()).path
        os.makedirs(os.path.join(app, "lib"))
        path = os.path.join(app, "app.conf")
        with open(path, "w") as f:
            f.write("[meta]\nextends: base\n\n[components]\npath: . lib\n")
        self.useFixture(fixtures.MonkeyPatch("sys.path", list(sys.path)))
        add_import_paths(load(path))
        add_import_paths(load(path))  # once each
        self.assertEqual([app, os.path.join(app, "lib")], sys.path[:2])
        self.assertEqual(1, sys.path.count(app))
