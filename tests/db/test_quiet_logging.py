"""Logging that costs nothing when off (issue 15 item 3): a runner whose
lines no handler would write never builds them, and its log tail still
keeps what the job says while it runs, at the tail's level."""

import io
import logging

import transaction

from jobs.execution import RUNNING_LINE
from jobs.interfaces.job import JobStatus
from jobs.log import BufferLogger, DevNullLogger, emits
from jobs.logtail import LogTail
from jobs.runner import JobRunner
from jobs.scripts.logger import formatter
from jobs.sections import RunSettings
from jobs.testing.foojob import DoFooJob
from jobs.testing.testcase import DatabaseTestCase, TestCase


def stream_logger(name, level):
    """A logger writing `level` and up into a buffer, propagating to no
    one."""
    logger = logging.getLogger(name)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setLevel(level)
    handler.setFormatter(formatter())
    logger.addHandler(handler)
    logger.propagate = False
    return logger, handler, stream


class TestEmits(TestCase):

    def logger(self, name, handler_level, level=logging.NOTSET):
        """A `stream_logger` at `level`, undone at the test's end."""
        logger, handler, _ = stream_logger(name, handler_level)
        self.addCleanup(logger.removeHandler, handler)
        logger.setLevel(level)
        self.addCleanup(logger.setLevel, logging.NOTSET)
        return logger, handler

    def test_a_handler_at_warning_emits_no_info(self):
        logger, _ = self.logger("test-emits-warning", logging.WARNING)
        self.assertFalse(emits(logger, logging.INFO))
        self.assertTrue(emits(logger, logging.WARNING))

    def test_ignored_handlers_do_not_count(self):
        logger, handler = self.logger("test-emits-ignored", logging.DEBUG,
                                      logging.DEBUG)
        self.assertTrue(emits(logger, logging.INFO))
        self.assertFalse(emits(logger, logging.INFO, (handler,)))

    def test_disabled_and_buffer_loggers(self):
        self.assertFalse(emits(DevNullLogger(), logging.INFO))
        self.assertTrue(emits(BufferLogger(), logging.DEBUG))

    def test_a_logger_adapter_emits_what_it_is_enabled_for(self):
        logger, _ = self.logger("test-emits-adapter", logging.WARNING,
                                logging.INFO)
        adapter = logging.LoggerAdapter(logger, {})
        self.assertEqual((False, True), (emits(adapter, logging.DEBUG),
                                         emits(adapter, logging.INFO)))

    def test_a_logger_without_handlers_falls_back_to_the_last_resort(self):
        logger = logging.Logger("test-emits-bare")
        logger.propagate = False
        self.assertFalse(emits(logger, logging.INFO))
        self.assertTrue(emits(logger, logging.WARNING))


class RecordCounter:
    """Counts the records built with a given message."""

    def __init__(self, test, message):
        self.count = 0
        factory = logging.getLogRecordFactory()

        def counting(*args, **kwargs):
            record = factory(*args, **kwargs)
            if record.msg == message:
                self.count += 1
            return record

        logging.setLogRecordFactory(counting)
        test.addCleanup(logging.setLogRecordFactory, factory)


class TestQuietRunner(DatabaseTestCase):

    __test__ = True
    database_kind = "postgresql"

    def run_jobs(self, logger, group_commit):
        for say in ("first", "second"):
            self.factory.makeDoFooJob(say="job says %s" % say)
        transaction.commit()
        runner = JobRunner(logger=logger, source=DoFooJob,
                           settings=RunSettings(batch_size=10,
                                                group_commit=group_commit))
        runner.runAll()
        return runner

    def test_quiet_runner_builds_no_per_job_lines_but_keeps_the_tail(self):
        for group_commit in (0, 10):
            logger, handler, stream = stream_logger(
                "test-quiet-runner", logging.WARNING)
            self.addCleanup(logger.removeHandler, handler)
            running = RecordCounter(self, RUNNING_LINE)
            completed = RecordCounter(self, "Completed %s.")
            self.run_jobs(logger, group_commit)
            self.assertEqual((0, 0), (running.count, completed.count))
            self.assertEqual("", stream.getvalue())
            # The job's own INFO lines reached the tail all the same.
            logs = [row[0] for row in self.store.execute(
                "SELECT log FROM job WHERE status = ? ORDER BY id",
                (JobStatus.COMPLETED.value,))][-2:]
            self.assertIn("INFO    job says first", logs[0])
            self.assertIn("INFO    job says second", logs[1])
            self.store.execute("DELETE FROM job")
            transaction.commit()

    def test_verbose_runner_writes_its_per_job_lines(self):
        logger, handler, stream = stream_logger(
            "test-verbose-runner", logging.INFO)
        self.addCleanup(logger.removeHandler, handler)
        # The counter the quiet test relies on counts these lines.
        running = RecordCounter(self, RUNNING_LINE)
        self.run_jobs(logger, 10)
        self.assertEqual(2, stream.getvalue().count("INFO    Running DoFooJob"))
        self.assertEqual(2, running.count)

    def test_a_logger_adapter_gets_the_per_job_lines(self):
        # An application's LoggerAdapter (context on every line) is no
        # logging.Logger: the runner logs through it as it is.
        logger, handler, stream = stream_logger(
            "test-adapter-runner", logging.INFO)
        self.addCleanup(logger.removeHandler, handler)
        self.run_jobs(logging.LoggerAdapter(logger, {"app": "shop"}), 10)
        self.assertEqual(2, stream.getvalue().count("INFO    Running DoFooJob"))

    def test_the_tail_collects_only_while_a_job_runs(self):
        tail = LogTail(logging.INFO)
        other = logging.getLogger("test-tail-outside")
        with tail:
            other.info("between jobs")
            tail.start()
            other.info("inside a job")
            other.debug("below the tail's level")
            tail.stop()
            other.info("after the job")
        self.assertEqual(["INFO    inside a job"],
                         [line.split(" ", 2)[2] for line in tail.lines])

    def test_a_job_begun_outside_a_run_attaches_the_tail_for_itself(self):
        root = logging.getLogger()
        tail = LogTail(logging.INFO)
        tail.begin()
        self.assertIn(tail, root.handlers)
        logging.getLogger("test-tail-job").info("inside a job")
        text = tail.end()
        self.assertNotIn(tail, root.handlers)
        self.assertTrue(text.endswith("INFO    inside a job"), text)

    def test_a_job_begun_inside_a_run_leaves_the_tail_attached(self):
        root = logging.getLogger()
        tail = LogTail(logging.INFO)
        with tail:
            tail.begin()
            self.assertIsNone(tail.end())  # nothing said
            self.assertIn(tail, root.handlers)
            self.assertFalse(tail.collecting)
        self.assertNotIn(tail, root.handlers)
