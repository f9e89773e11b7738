"""What the live database holds: a table's columns, if it exists.

Pages and metrics about tables another part of jobs adds (the live
workers' ``worker`` table, schedules' ``schedule_tick``) ask here first,
so that a database without them says "not available" instead of failing.
"""

__all__ = ["table_columns"]

from jobs.database.dialect import dialect


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
