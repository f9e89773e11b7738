"""No code path of the library reads the host's clock to judge a lease or
a schedule: those comparisons are SQL against the database's clock
(`jobs.database.UTCNow`). This test lists every read of the wall clock in
``lib/jobs`` and fails on a new one, so that each is looked at.
(``time.monotonic`` measures durations, not dates, and is allowed.)
"""

import os
import re

import testtools

import jobs

WALL_CLOCK = re.compile(
    r"\bdatetime\.(now|utcnow|today)\(|\btime\.time(_ns)?\(|"
    r"\bdate\.today\(|\bclock\.now\(")
# (path relative to lib/jobs, line text) -> why the host's clock is fine.
ALLOWED = {
    ("database/clock.py", "self.frozen_at = when or datetime.now(UTC)"):
        "freezing the test clock: 'now' as a starting point",
    ("database/clock.py", "return self.frozen_at or datetime.now(UTC)"):
        "Clock.now: OOPS report ages in the CLI, never leases",
    ("cli/oops.py", "return parse_date(options.since, now=clock.now())"):
        "jobs oops list/summary --since: reports are dated by their hosts",
    ("cli/oops.py",
     "before = parse_date(options.older_than, now=clock.now())"):
        "jobs oops prune: report folders are dated by their hosts",
    ("oopsindex.py",
     'id=report["id"], reported=report_time(report) or clock.now(),'):
        "an OOPS report without a time: dated by its host, as reports are",
    ("oopsfiles.py",
     "now = (now or datetime.datetime.now(datetime.timezone.utc)"):
        "an OOPS report's date folder: dated by its host, as reports are",
    ("oopsfiles.py", "now = time.time() if now is None else now"):
        "the age of a .tmp file: compared with its mtime, the host's",
    ("log.py", "now = time.time()"):
        "a log record's time, as logging's own records take it",
    ("model/options.py",
     "datetime.now(timezone.utc) + timedelta(seconds=seconds)"):
        "a new job's delay checked against the year 9999, not a schedule",
}


class TestNoHostClockForLeases(testtools.TestCase):

    def test_every_wall_clock_read_is_known(self):
        root = os.path.dirname(jobs.__file__)
        found = set()
        for folder, _, names in os.walk(root):
            if os.path.relpath(folder, root).startswith("testing"):
                continue  # test helpers, not the library's behaviour
            for name in names:
                if not name.endswith(".py"):
                    continue
                path = os.path.join(folder, name)
                with open(path, encoding="utf-8") as f:
                    for line in f:
                        if WALL_CLOCK.search(line):
                            found.add((os.path.relpath(path, root),
                                       line.strip()))
        self.assertEqual(set(ALLOWED), found)
