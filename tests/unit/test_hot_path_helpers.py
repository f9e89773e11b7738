"""The small helpers a runner calls once a job (issue 15): they must cost
little and change nothing that anyone sees."""

import gc
import io
import logging
import os
import sys
import threading
import time

import testtools
from fixtures import TempDir
import zope.component.testing
from storm.zope.interfaces import IZStorm
from zope.component import queryUtility

from jobs.database import store
from jobs.log import RepeatedLine
from jobs.scripts.logger import (
    DATE_FORMAT,
    LINE_FORMAT,
    LineFileHandler,
    LineStreamHandler,
    formatter,
    printable,
)


class TestScriptLines(testtools.TestCase):
    """`ScriptFormatter` writes its one format without logging's style
    machinery: the text must be the one logging's formatter makes."""

    def reference(self):
        reference = logging.Formatter(LINE_FORMAT, DATE_FORMAT)
        reference.converter = time.gmtime
        return reference

    def record(self, message, args=(), exc_info=None):
        return logging.getLogger("jobs.test").makeRecord(
            "jobs.test", logging.INFO, __file__, 1, message, args, exc_info)

    def test_a_plain_line_is_logging_s_line(self):
        record = self.record("Running %s, attempt %d", ("DoFooJob (ID 7)", 2))
        self.assertEqual(self.reference().format(record),
                         formatter().format(record))
        self.assertIn("INFO    Running DoFooJob (ID 7), attempt 2",
                      formatter().format(record))

    def test_a_line_with_a_traceback_keeps_it(self):
        try:
            raise ValueError("boom")
        except ValueError:
            record = self.record("It failed", exc_info=sys.exc_info())
        text = formatter().format(record)
        self.assertEqual(self.reference().format(record), text)
        self.assertIn("ValueError: boom", text)

    def test_a_line_is_redacted(self):
        record = self.record("connecting to %s",
                             ("postgres://jobs:s3cret@db/jobs",))
        text = formatter(lambda line: line.replace("s3cret", "<x>")).format(
            record)
        self.assertTrue(text.endswith("postgres://jobs:<x>@db/jobs"), text)

    def test_lines_of_several_levels_and_seconds_are_logging_s_lines(self):
        # The formatter keeps each second's line starts per level.
        ours = formatter()
        records = []
        for created, level in [(1000.2, logging.INFO),
                               (1000.7, logging.WARNING),
                               (1000.9, logging.INFO),
                               (1001.1, logging.INFO),
                               (1001.5, logging.ERROR)]:
            record = self.record("line at %s", (created,))
            record.levelno, record.levelname = (
                level, logging.getLevelName(level))
            record.created = created
            records.append(record)
        self.assertEqual([self.reference().format(r) for r in records],
                         [ours.format(r) for r in records])

    def test_printable_keeps_ascii_and_escapes_the_rest(self):
        self.assertEqual(
            ["plain ascii", "nul \\x00 here", "caf\u00e9", "bad \\xff byte"],
            [printable("plain ascii"), printable("nul \x00 here"),
             printable("caf\u00e9"),
             printable(b"bad \xff byte".decode("utf-8", "surrogateescape"))])


class KeepRecords(logging.Handler):

    def __init__(self):
        super().__init__()
        self.records = []

    def emit(self, record):
        self.records.append(record)


class TestRepeatedLine(testtools.TestCase):
    """`RepeatedLine` copies its first record: what handlers see must be
    what ``logger.info`` at the same place would have given them."""

    # What differs between two records of the same call site.
    CHANGING = {"args", "created", "msecs", "relativeCreated", "lineno"}

    def setUp(self):
        super().setUp()
        self.logger = logging.Logger("jobs.test.repeated", logging.INFO)
        self.kept = KeepRecords()
        self.logger.addHandler(self.kept)
        self.line = RepeatedLine(self.logger, logging.INFO,
                                 "Running %s (ID %d), attempt %d")

    def say(self, job_id):
        self.line("DoFooJob", job_id, 1); self.at = sys._getframe().f_lineno  # noqa: E702
        self.logger.info("Running %s (ID %d), attempt %d", "DoFooJob",
                         job_id, 1)

    def fields(self, record):
        return {key: value for key, value in record.__dict__.items()
                if key not in self.CHANGING}

    def test_records_are_logger_info_s(self):
        for job_id in (1, 2, 3):
            self.say(job_id)
        ours, theirs = self.kept.records[0::2], self.kept.records[1::2]
        self.assertEqual([self.fields(r) for r in theirs],
                         [self.fields(r) for r in ours])
        self.assertEqual(
            ["Running DoFooJob (ID %d), attempt 1" % n for n in (1, 2, 3)],
            [r.getMessage() for r in ours])
        self.assertEqual({("say", self.at)},
                         {(r.funcName, r.lineno) for r in ours})
        # Each record has its own time, as logging gives it.
        for record in ours:
            self.assertEqual(int((record.created % 1) * 1000), record.msecs)
        self.assertEqual(sorted(r.created for r in ours),
                         [r.created for r in ours])

    def test_another_thread_gets_its_own_record(self):
        self.say(1)
        thread = threading.Thread(target=self.say, args=(2,),
                                  name="other-runner")
        thread.start()
        thread.join()
        self.assertEqual(["MainThread", "MainThread", "other-runner",
                          "other-runner"],
                         [r.threadName for r in self.kept.records])

    def test_a_logger_that_makes_its_own_records_makes_every_one(self):
        made = []

        class Stamping(logging.Logger):
            def makeRecord(self, *args, **kwargs):
                record = super().makeRecord(*args, **kwargs)
                record.serial = len(made)
                made.append(record)
                return record

        logger = Stamping("jobs.test.stamping", logging.INFO)
        logger.addHandler(self.kept)
        line = RepeatedLine(logger, logging.INFO, "Running %s")
        line("DoFooJob")
        line("DoFooJob")
        self.assertEqual([0, 1], [r.serial for r in self.kept.records])

    def test_a_record_factory_makes_every_record(self):
        made = []

        def factory(*args, **kwargs):
            record = logging.LogRecord(*args, **kwargs)
            record.serial = len(made)
            made.append(record)
            return record

        logging.setLogRecordFactory(factory)
        self.addCleanup(logging.setLogRecordFactory, logging.LogRecord)
        self.line("DoFooJob", 1, 1)
        self.line("DoFooJob", 2, 1)
        self.assertEqual([0, 1], [r.serial for r in self.kept.records])


    def test_a_forked_child_gets_its_own_record(self):
        # The process id is kept, not asked for each line: a child must
        # not copy its parent's record (it would name the parent).
        self.say(1)
        read, write = os.pipe()
        pid = os.fork()
        if not pid:
            try:
                self.line("DoFooJob", 2, 1)
                os.write(write, b"%d" % self.kept.records[-1].process)
            finally:
                os._exit(0)
        os.close(write)
        os.waitpid(pid, 0)
        with os.fdopen(read, "rb") as reader:
            self.assertEqual(pid, int(reader.read()))


class TestLineHandlers(testtools.TestCase):
    """A script's handlers write each line and flush it, as logging's
    own do, without their per-line Python steps."""

    def record(self, message):
        return logging.LogRecord("jobs.test", logging.INFO, __file__, 1,
                                 message, (), None)

    def test_a_line_is_the_stream_handlers_line_flushed(self):
        ours, theirs = io.StringIO(), io.StringIO()
        flushed = []
        ours.flush = lambda: flushed.append(ours.getvalue())
        for handler, stream in ((LineStreamHandler(ours), ours),
                                (logging.StreamHandler(theirs), theirs)):
            handler.setFormatter(formatter())
            handler.handle(self.record("Running DoFooJob (ID 1)"))
        self.assertEqual(theirs.getvalue(), ours.getvalue())
        self.assertEqual([ours.getvalue()], flushed)

    def test_a_closed_file_handler_opens_its_file_again(self):
        path = os.path.join(self.useFixture(TempDir()).path, "run.log")
        handler = LineFileHandler(path, encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(message)s"))
        handler.handle(self.record("one"))
        handler.close()
        handler.handle(self.record("two"))
        handler.close()
        with open(path, encoding="utf-8") as f:
            self.assertEqual("one\ntwo\n", f.read())


class TestCollectGarbage(testtools.TestCase):
    """`collect_garbage` collects once `COLLECT_EVERY` jobs have run, not
    at every call (a batch of one job)."""

    def setUp(self):
        super().setUp()
        self.collections = []

        def counted(phase, info):
            if phase == "start":
                self.collections.append(info["generation"])
        enabled = gc.isenabled()
        gc.disable()  # only the collections asked for count
        self.addCleanup(lambda: gc.enable() if enabled else None)
        gc.callbacks.append(counted)
        self.addCleanup(gc.callbacks.remove, counted)
        store._uncollected[0] = 0

    def test_one_job_batches_share_a_collection(self):
        for _ in range(store.COLLECT_EVERY - 1):
            store.collect_garbage(1)
        self.assertEqual([], self.collections)
        store.collect_garbage(1)
        self.assertEqual([1], self.collections)

    def test_a_big_batch_collects_at_once(self):
        store.collect_garbage(store.COLLECT_EVERY + 50)
        store.collect_garbage()
        self.assertEqual([1, 1], self.collections)


class TestZStormLookup(testtools.TestCase):
    """`get_zstorm` keeps the utility it found while the registry it came
    from stands, and asks a new registry again."""

    def test_a_cleared_registry_is_asked_again(self):
        first = store.get_zstorm()
        self.assertIs(first, store.get_zstorm())
        zope.component.testing.setUp()
        self.addCleanup(zope.component.testing.tearDown)
        self.assertIsNone(queryUtility(IZStorm))
        second = store.get_zstorm()
        self.assertIsNot(first, second)
        self.assertIs(second, queryUtility(IZStorm))
