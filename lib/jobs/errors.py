"""The exceptions jobs raises: one root, every public error below it."""

__all__ = [
    "ChildDied",
    "CommandError",
    "ConfigError",
    "DatabaseError",
    "DispatchError",
    "InvalidJobData",
    "InvalidJobOption",
    "InvalidTransition",
    "JobCancelled",
    "JobDataTooLarge",
    "JobLoadError",
    "JobsError",
    "LeaseHeld",
    "LostRunner",
    "NotFoundError",
    "ScheduleError",
    "SchemaError",
    "SectionError",
    "StaleJob",
    "SuspendJobException",
    "TransactionMisuse",
    "TaskNotAllowed",
    "UnknownJobType",
    "UsageError",
]


class JobsError(Exception):
    """The root of every exception that jobs raises on purpose."""


class InvalidTransition(JobsError):
    """A job was asked to move between two statuses the lifecycle forbids."""

    def __init__(self, current_status, requested_status):
        self.current_status = current_status
        self.requested_status = requested_status
        super().__init__(
            "Transition from %s to %s is invalid."
            % (current_status.name, requested_status.name))


class LeaseHeld(JobsError):
    """The job's lease is held by another runner, or the job is not ready."""

    def __init__(self, message="Lease is already held."):
        super().__init__(message)


class StaleJob(JobsError):
    """The job row moved on (another runner reclaimed it) since this attempt.

    Raised instead of overwriting a newer attempt's outcome: the update
    that records an outcome is conditional on the attempt it belongs to.
    """


class LostRunner(JobsError):
    """The runner of an earlier attempt died: its lease expired while RUNNING."""


class SuspendJobException(JobsError):
    """Raised by a job's ``run()`` to move the job to SUSPENDED."""


class NotFoundError(JobsError):
    """A job (or its context row) looked up by id does not exist."""


class UnknownJobType(JobsError):
    """A context row's job type has no registered class."""


class ConfigError(JobsError):
    """The configuration is missing, unreadable or invalid."""


class DatabaseError(JobsError):
    """The database is unreachable or refused a connection."""


class DispatchError(JobsError):
    """A job could not be sent to Celery (the broker cannot be reached)."""


class SchemaError(JobsError):
    """The database schema is missing or older than the code."""


class InvalidJobData(JobsError):
    """A job's ``json_data`` cannot be stored: not JSON, or text the database refuses."""


class JobDataTooLarge(InvalidJobData):
    """A job's ``json_data`` is larger than its job type allows."""


class JobLoadError(JobsError):
    """A ready job's row cannot be loaded (bad ``json_data``, unknown job type)."""


class JobCancelled(JobsError):
    """Raised by ``check_cancelled()`` in job code: an operator asked to
    cancel the running job; it ends CANCELLED, without an OOPS."""


class ChildDied(JobsError):
    """The child process running a job exited or was killed mid-job."""


class SectionError(JobsError):
    """A job section cannot be run (its configuration or registration)."""


class UsageError(JobsError):
    """A script's command line is wrong."""


class CommandError(JobsError):
    """A `jobs` command cannot do what it was asked (bad id, date, move)."""


class InvalidJobOption(JobsError, ValueError):
    """A job's creation option (delay, priority, unique_key...) is invalid."""


class DependencyCycle(InvalidJobOption):
    """A job cannot depend on a job that depends, directly or not, on it."""


class InvalidJobResult(InvalidJobData):
    """What a job's ``run()`` returned cannot be stored as its result (not JSON, or too large)."""


class TaskNotAllowed(JobsError):
    """A function job names no registered ``@task`` of its section."""


class ScheduleError(JobsError, ValueError):
    """A periodic schedule is malformed or names no task a section runs."""


class TransactionMisuse(JobsError):
    """Job code committed, rolled back or closed the transaction the
    runner gave it (the runner commits a job's work with its outcome)."""
