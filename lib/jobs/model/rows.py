"""Multi-row INSERT statements: rows of values, some of them SQL
expressions (`Expression`) or values already encoded (`Encoded`), sent as
one statement (`insert_rows`)."""

from __future__ import annotations

__all__ = ["Encoded", "Expression", "column_writer", "insert_rows"]

from typing import Any, Callable, Optional, Sequence

from jobs.database import dialect
from jobs.errors import InvalidJobData


class Expression:
    """An SQL expression among a row's values (``now``, say)."""

    __slots__ = ("sql", "parameters")

    def __init__(self, sql: str, parameters: list[Any]):
        self.sql = sql
        self.parameters = parameters


def insert_rows(store: Any, table: str, columns: Sequence[str],
                rows: Sequence[Sequence[Any]], suffix: str = "") -> Any:
    """INSERT `rows` into `table` in one statement.

    On PostgreSQL each column travels as one array parameter (``INSERT
    ... SELECT ... FROM unnest(...)``): one parameter a column instead of
    one a value, which halves the time a large insert takes to send and
    parse. A column whose every row holds the same `Expression` is
    written once; a column of differing expressions falls back to VALUES.

    :param rows: tuples of values, each a database-ready value or an
        `Expression` (such as now, by the database's clock).
    :param suffix: SQL after the rows (``ON CONFLICT ...``).
    :return: the statement's result.
    """
    if rows and dialect(store).arrays:
        statement = _unnest_insert(store, table, columns, rows)
        if statement is not None:
            sql, parameters = statement
            return store.execute(sql + suffix, parameters)
    fragments, parameters = [], []
    for row in rows:
        parts = []
        for value in row:
            if isinstance(value, Expression):
                parts.append(value.sql)
                parameters.extend(value.parameters)
            else:
                parts.append("?")
                parameters.append(value)
        fragments.append("(%s)" % ", ".join(parts))
    return store.execute("INSERT INTO %s (%s) VALUES %s%s" % (
        table, ", ".join(columns), ", ".join(fragments), suffix), parameters)


# (database, table) -> {column: PostgreSQL type name}
_column_types: dict[tuple[int, str], dict[str, str]] = {}


def _unnest_insert(store: Any, table: str, columns: Sequence[str],
                   rows: Sequence[Sequence[Any]]
                   ) -> Optional[tuple[str, list[Any]]]:
    """``INSERT ... SELECT ... FROM unnest(arrays)`` for `rows`, or None
    when a column holds differing SQL expressions."""
    key = (id(store.get_database()), table)
    types = _column_types.get(key)
    if types is None:
        types = _column_types[key] = dict(store.execute(
            "SELECT column_name, udt_name FROM information_schema.columns"
            " WHERE table_schema = current_schema() AND table_name = ?",
            (table,)))
    selected: list[str] = []
    names: list[str] = []
    arrays: list[str] = []
    # The SELECT list's parameters come before unnest's.
    expression_parameters: list[Any] = []
    array_parameters: list[Any] = []
    for index, column in enumerate(columns):
        first = rows[0][index]
        if isinstance(first, Expression):
            if any(row[index] is not first for row in rows):
                return None
            selected.append(first.sql)
            expression_parameters.extend(first.parameters)
            continue
        values = [row[index] for row in rows]
        if any(isinstance(value, Expression) for value in values):
            return None
        names.append("c%d" % index)
        selected.append("v.c%d" % index)
        arrays.append("?::%s[]" % types[column])
        array_parameters.append(values)
    sql = "INSERT INTO %s (%s) SELECT %s FROM unnest(%s) AS v(%s)" % (
        table, ", ".join(columns), ", ".join(selected), ", ".join(arrays),
        ", ".join(names))
    return sql, expression_parameters + array_parameters


class Encoded:
    """A context column's value already as the database takes it (the
    JSON text of a JSON column, say): `bulk_create` writes it as it is."""

    __slots__ = ("text",)

    def __init__(self, text: str):
        self.text = text


def column_writer(context_class: type, key: str, value: Any
                   ) -> tuple[str, Callable[[Any], Any]]:
    """The database column of `context_class` that `key` names, and a
    function making a value of it what the database takes. A reference
    (``foo``) given as an object (`value`, an example) is stored through
    its ``foo_id`` column, as its ``id``.

    :raises InvalidJobData: for a key that names no column.
    """
    from storm.properties import PropertyColumn
    attribute = getattr(context_class, key, None)
    if isinstance(attribute, PropertyColumn):
        factory = attribute.variable_factory

        def write(value: Any) -> Any:
            if value is None:
                return None
            if type(value) is Encoded:
                return value.text
            return factory(value=value).get(to_db=True)
        return attribute.name, write
    by_id = getattr(context_class, key + "_id", None)
    if isinstance(by_id, PropertyColumn) and hasattr(value, "id"):
        return by_id.name, lambda value: None if value is None else value.id
    raise InvalidJobData("%s has no column %r to create jobs with."
                         % (context_class.__name__, key))
