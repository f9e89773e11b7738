"""Column types: aware UTC datetimes, lazr.enum items, JSON."""

__all__ = ["DBEnum", "JSON", "UTCDateTime", "UTCDateTimeVariable"]

from datetime import datetime, timezone

import psycopg2.extensions
from storm.databases.postgres import JSON
from storm.properties import SimpleProperty
from storm.variables import DateTimeVariable, Variable

UTC = timezone.utc


def beyond_datetime(text):
    """What a stored date that Python's datetime cannot hold (the year
    11533, written before `jobs.bounds` refused it, or a BC date) reads
    as: `datetime.max`, or `datetime.min` for a BC date — as psycopg2
    reads PostgreSQL's infinity. Such a row can still be listed, shown,
    cancelled and pruned."""
    return datetime.min if str(text).rstrip().endswith("BC") else datetime.max


def _lenient(default):
    def cast(value, cursor):
        try:
            return default(value, cursor)
        except ValueError:
            return beyond_datetime(value)
    return cast


# PostgreSQL's timestamp and timestamptz, read leniently by every
# connection of this process (psycopg2 raises "year 11533 is out of
# range" otherwise, for the whole row and its query).
for _default in (psycopg2.extensions.PYDATETIME,
                 psycopg2.extensions.PYDATETIMETZ):
    psycopg2.extensions.register_type(psycopg2.extensions.new_type(
        _default.values, _default.name + "_LENIENT", _lenient(_default)))


class UTCDateTimeVariable(DateTimeVariable):
    """Aware UTC datetimes in Python; naive UTC text on the wire.

    Works on both backends: SQLite has no time zones (Storm cannot read
    back an aware value there), and PostgreSQL ``timestamp`` columns hold
    UTC wall time.
    """

    __slots__ = ()

    def __init__(self, *args, **kwargs):
        kwargs["tzinfo"] = UTC
        super().__init__(*args, **kwargs)

    def parse_set(self, value, from_db):
        try:
            return super().parse_set(value, from_db)
        except ValueError:
            # SQLite's text past the year 9999 (see `beyond_datetime`).
            if not from_db or not isinstance(value, str):
                raise
            return beyond_datetime(value).replace(tzinfo=UTC)

    def parse_get(self, value, to_db):
        if to_db and value is not None:
            return value.astimezone(UTC).replace(tzinfo=None).isoformat(
                " ", "microseconds")
        return value


class UTCDateTime(SimpleProperty):
    """A Storm property holding an aware UTC datetime (see the variable)."""

    variable_class = UTCDateTimeVariable


class DBEnumVariable(Variable):
    """A lazr.enum `DBItem` in Python, its int value in the database."""

    __slots__ = ("_enum",)

    def __init__(self, *args, **kwargs):
        self._enum = kwargs.pop("enum")
        super().__init__(*args, **kwargs)

    def parse_set(self, value, from_db):
        if from_db:
            try:
                return self._enum.items[value]
            except KeyError:
                raise ValueError("%r is not a value of %s." % (
                    value, self._enum.__name__)) from None
        if getattr(value, "enum", None) is not self._enum:
            raise TypeError(
                "Expected an item of %s, found %r"
                % (self._enum.__name__, value))
        return value

    def parse_get(self, value, to_db):
        if to_db:
            return value.value
        return value


class DBEnum(SimpleProperty):
    """A Storm property for a lazr.enum `DBEnumeratedType` (int column).

    :param enum: the enumerated type.
    """

    variable_class = DBEnumVariable

    def __init__(self, name=None, enum=None, **kwargs):
        kwargs["enum"] = enum
        super().__init__(name, **kwargs)
