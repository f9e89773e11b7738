"""The outcome policy, table-driven: one row per line of the README's
outcome table, no database."""

from datetime import timedelta

from testtools import TestCase

from jobs.errors import JobCancelled, LostRunner, StaleJob, SuspendJobException
from jobs.interfaces.job import JobStatus as S
from jobs.outcome import ErrorPolicy, attempts_left, decide, decide_lost


class Retry(Exception):
    pass


class UserMistake(Exception):
    pass


class SoftLimit(Exception):
    pass


class DatabaseSaysAgain(Exception):
    """What psycopg2 raises: an error with the SQLSTATE in ``pgcode``."""

    def __init__(self, pgcode):
        super().__init__("SQLSTATE %s" % pgcode)
        self.pgcode = pgcode


class OperationalError(Exception):
    """sqlite3's, by name."""


def wrapped(error):
    """`error` as Storm re-raises it: another instance, without the
    SQLSTATE, caused by the original."""
    storms = Exception(*error.args)
    storms.__cause__ = error
    return storms


POLICY = ErrorPolicy(user_error_types=(UserMistake,),
                     retry_error_types=(Retry,),
                     retry_delay=timedelta(minutes=7),
                     requeue_error_types=(SoftLimit,))

# (README line, error raised, attempt, max_retries) ->
# (status, job's work kept, OOPS, notification, retry delay)
TABLE = [
    ("returns", None, 1, 0,
     (S.COMPLETED, True, False, None, None)),
    ("retry error, attempts left", Retry("later"), 1, 1,
     (S.WAITING, True, False, None, timedelta(minutes=7))),
    ("retry error, attempts left (3 of 3)", Retry("later"), 3, 3,
     (S.WAITING, True, False, None, timedelta(minutes=7))),
    ("retry error, no attempts left", Retry("later"), 2, 1,
     (S.FAILED, False, True, "notifyOops", None)),
    ("retry error, max_retries 0", Retry("later"), 1, 0,
     (S.FAILED, False, True, "notifyOops", None)),
    ("user error", UserMistake("no"), 1, 5,
     (S.FAILED, False, False, "notifyUserError", None)),
    ("SuspendJobException", SuspendJobException(), 1, 0,
     (S.SUSPENDED, True, False, None, None)),
    ("anything else", ValueError("broken"), 1, 5,
     (S.FAILED, False, True, "notifyOops", None)),
    ("anything else: sys.exit() in job code", SystemExit(3), 1, 5,
     (S.FAILED, False, True, "notifyOops", None)),
    ("anything else: a time limit (process runner)",
     TimeoutError("Job ran too long."), 1, 5,
     (S.FAILED, False, True, "notifyOops", None)),
    ("cancelled while running (check_cancelled)", JobCancelled("stop"), 1, 0,
     (S.CANCELLED, False, False, None, None)),
    ("requeued (Celery's soft time limit)", SoftLimit(), 1, 0,
     (S.WAITING, False, False, None, None)),
    ("fenced: another runner took the job over", StaleJob("late"), 1, 0,
     (None, False, False, None, None)),
    ("transient: a deadlock, attempts left", DatabaseSaysAgain("40P01"), 1, 3,
     (S.WAITING, False, False, None, timedelta(seconds=1))),
    ("transient: a serialization failure, attempts left",
     DatabaseSaysAgain("40001"), 2, 3,
     (S.WAITING, False, False, None, timedelta(seconds=1))),
    ("transient: a lock wait timed out, attempts left",
     DatabaseSaysAgain("55P03"), 1, 1,
     (S.WAITING, False, False, None, timedelta(seconds=1))),
    ("transient: SQLite's lock held too long, attempts left",
     OperationalError("database is locked"), 1, 1,
     (S.WAITING, False, False, None, timedelta(seconds=1))),
    ("transient: a deadlock as Storm raises it",
     wrapped(DatabaseSaysAgain("40P01")), 1, 3,
     (S.WAITING, False, False, None, timedelta(seconds=1))),
    ("transient, no attempts left", DatabaseSaysAgain("40P01"), 1, 0,
     (S.FAILED, False, True, "notifyOops", None)),
    ("another SQLSTATE is anything else", DatabaseSaysAgain("23505"), 1, 3,
     (S.FAILED, False, True, "notifyOops", None)),
]


class TestDecide(TestCase):

    def test_every_row_of_the_outcome_table(self):
        for line, error, attempt, max_retries, expected in TABLE:
            outcome = decide(error, attempt, max_retries, POLICY)
            self.assertEqual(
                expected,
                (outcome.status, outcome.keep_work, outcome.oops,
                 outcome.notify, outcome.retry_delay), line)
            self.assertIs(error, outcome.error, line)

    def test_a_retry_type_that_is_also_a_user_error_retries_while_it_can(self):
        class Both(Retry, UserMistake):
            pass

        self.assertEqual("retry", decide(Both(), 1, 1, POLICY).name)
        self.assertEqual("fail", decide(Both(), 2, 1, POLICY).name)

    def test_no_error_types_means_every_error_is_an_oops(self):
        outcome = decide(Retry("later"), 1, 9, ErrorPolicy())
        self.assertEqual(("fail", True), (outcome.name, outcome.oops))


class TestLostRunner(TestCase):
    """The last row: a RUNNING job whose lease expired, taken over."""

    def test_attempts_left_runs_it_again(self):
        self.assertIsNone(decide_lost(1, 1))
        self.assertIsNone(decide_lost(2, 5))

    def test_no_attempts_left_fails_it_with_a_lost_runner_oops(self):
        outcome = decide_lost(1, 0)
        self.assertEqual((S.FAILED, False, True, "notifyOops"),
                         (outcome.status, outcome.keep_work, outcome.oops,
                          outcome.notify))
        self.assertIsInstance(outcome.error, LostRunner)
        self.assertIn("runner of attempt 1 was lost", str(outcome.error))


class TestAttemptsLeft(TestCase):

    def test_attempt_n_may_be_followed_while_n_is_at_most_max_retries(self):
        self.assertEqual(
            [True, True, False],
            [attempts_left(attempt, 2) for attempt in (1, 2, 3)])
        self.assertFalse(attempts_left(1, 0))
