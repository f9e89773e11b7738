"""What the live database holds: a table's columns, if it exists.

Pages and metrics about tables another part of jobs adds (the live
workers' ``worker`` table, schedules' ``schedule_tick``) ask here first,
so that a database without them says "not available" instead of failing.
"""

__all__ = [
    "DEPENDENCY_COLUMNS",
    "DEPENDENCY_TABLE",
    "SCHEDULE_TABLE",
    "WORKER_TABLE",
    "table_columns",
]

from jobs.database.dialect import dialect

# The tables of live workers, schedules and dependencies (issue 16), as
# the dashboard, `jobs explain` and the metrics read them.
WORKER_TABLE = "worker"
SCHEDULE_TABLE = "schedule_tick"
DEPENDENCY_TABLE = "job_dependency"
# job_dependency (job, depends_on): `job` waits for `depends_on`.
DEPENDENCY_COLUMNS = ("job", "depends_on")


def table_columns(store, table):
    """The column names of `table`, in order; ``[]`` when there is no
    such table."""
    if dialect(store).information_schema:
        return [row[0] for row in store.execute(
            "SELECT column_name FROM information_schema.columns"
            " WHERE table_schema = current_schema() AND table_name = ?"
            " ORDER BY ordinal_position", (table,))]
    return [row[1] for row in store.execute(
        "SELECT * FROM pragma_table_info(?)", (table,))]
