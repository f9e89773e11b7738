"""Lean context rows: the context rows of claimed jobs read with one
statement into plain objects, made Storm objects only when a job's code
needs the ORM.

A Storm object costs more to load than a short job costs to run, and
while it lives every flush of the transaction re-serializes each of its
JSON values to look for changes: a group of N jobs loaded at once paid
that N² times (issue 15's profile: 37% of a group commit). A
`LeanContext` holds the row as read and converts a column only when it
is read, with Storm's own column types (``self.context.json_data`` is
the same value as through the ORM).

Anything else — a reference (``self.context.foo``), a write
(``self.context.note = ...``), a method of the context class — turns it
into the Storm object of that row, built from the values already read
(no query), and from then on the context delegates everything to it.
A JSON value the job changed in place before that is carried over; one
changed in place without it is written when the job returns
(`settle`), as Storm would write it at the flush that follows.
"""

__all__ = ["ContextJoin", "LeanContext", "load_contexts", "settle",
           "storm_object"]

import threading

from storm.info import get_cls_info
from storm.variables import JSONVariable, MutableValueVariable

from jobs.database import dialect, get_store, prepared
from jobs.database.columns import DBEnumVariable
from jobs.database.stormext import IntArray, load_object, result_class
from jobs.model.runnable import LOAD_ERRORS
from jobs.model.stormjson import decode_json, encode_json, plain_json


class _Loader:
    """How to read and convert the rows of one context class."""

    def __init__(self, cls):
        info = get_cls_info(cls)
        self.cls = cls
        self.columns = info.columns
        names = {id(column): attr for attr, column in info.attributes.items()}
        self.positions = {names[id(column)]: index
                          for index, column in enumerate(self.columns)}
        self.mutable = {
            names[id(column)] for column in self.columns
            if issubclass(_variable_class(column), MutableValueVariable)}
        table = self.table = info.table.name
        self.job_column = cls.job_id.name
        # JSON is read as its text (Storm parses it, as it parses a
        # JSON value from SQLite): the text is the snapshot that `settle`
        # compares with, without serializing the value when it is read.
        self.column_list = ", ".join(
            ('CAST(%s."%s" AS TEXT)' if issubclass(
                _variable_class(column), JSONVariable) else '%s."%s"')
            % (table, column.name) for column in self.columns)
        self.select = "SELECT %s FROM %s WHERE %s.%s" % (
            self.column_list, table, table, self.job_column)
        self.job_position = self.positions["job_id"]
        # A variable per immutable column and thread, reused for every
        # row: it only converts (a row keeps its values, not variables).
        self.reused = {index for index, column in enumerate(self.columns)
                       if names[id(column)] not in self.mutable}
        self._converters = threading.local()
        # The values of enumerated columns by their value as read (an
        # item of an enumerated type is immutable, and the same for the
        # same number): the job type every job is made by is converted
        # once per type, not once per job (a tenth of a group's time).
        self.items = {index: {} for index, column in enumerate(self.columns)
                      if issubclass(_variable_class(column), DBEnumVariable)}
        # Storm's own JSON columns: their text is parsed with no variable.
        self.plain_json = {index for index, column in enumerate(self.columns)
                           if plain_json(_variable_class(column))}
        # Read when the row is: the JSON values (see `LeanContext`), and
        # the enumerated ones (the job type, which makes the job).
        # Each as ``(name, position, the enumerated column's items or
        # None, whether it is Storm's plain JSON)``; the other columns
        # are read when first asked for (`LeanContext._read`).
        self.eager = [
            (name, position, self.items.get(position),
             position in self.plain_json)
            for name, position in sorted(self.positions.items(),
                                         key=lambda p: p[1])
            if name in self.mutable or position in self.items]

    def variable(self, position):
        """A Storm variable of the column at `position` to convert a value
        read from the database."""
        if position in self.reused:
            converters = self._converters.__dict__
            variable = converters.get(position)
            if variable is None:
                column = self.columns[position]
                variable = converters[position] = column.variable_factory(
                    column=column)
            return variable
        column = self.columns[position]
        return column.variable_factory(column=column)

    def rows(self, store, job_ids):
        if dialect(store).arrays:
            return prepared.execute(
                store, self.select + " = ANY(?::integer[])",
                [IntArray(job_ids)]).get_all()
        rows = []
        for first in range(0, len(job_ids), 500):
            chunk = list(job_ids[first:first + 500])
            rows += store.execute(self.select + " IN (%s)" % ", ".join(
                ["?"] * len(chunk)), chunk).get_all()
        return rows


def _variable_class(column):
    factory = column.variable_factory
    return factory.func if hasattr(factory, "func") else factory


_loaders = {}

# An enumerated column's value not converted yet (`_Loader.items`).
_UNREAD = object()


def _loader(context_class):
    loader = _loaders.get(context_class)
    if loader is None:
        loader = _loaders[context_class] = _Loader(context_class)
    return loader


class ContextJoin:
    """The context rows of a claim's jobs, read by the claim statement
    itself (`jobs.model.claims.claim`'s `load`): a job committed on its
    own then costs no round trip for its context row.

    :param context_class: the Storm class of the context rows.
    :param make: makes a runnable job of a `LeanContext`
        (``makeSubclass``).
    """

    def __init__(self, context_class, make):
        self.context_class = context_class
        self.make = make

    def __eq__(self, other):
        # The claim's statement cache holds one statement per source.
        return (isinstance(other, ContextJoin)
                and other.context_class is self.context_class)

    def __hash__(self):
        return hash(self.context_class)

    def joined(self, claim_sql):
        """`claim_sql` (an ``UPDATE ... RETURNING`` of a claim's eight
        columns, the first the job id) followed by the context row's
        columns (NULLs when the job has none)."""
        return "WITH claimed_rows AS (%s) %s" % (
            claim_sql, self.select("claimed_rows"))

    def select(self, source):
        """A SELECT of the rows of the WITH query `source` (a claim's
        eight columns), each followed by its context row's columns."""
        loader = _loader(self.context_class)
        return ("SELECT %s.*, %s FROM %s LEFT JOIN %s ON %s.%s = %s.id"
                % (source, loader.column_list, source, loader.table,
                   loader.table, loader.job_column, source))

    def jobs(self, rows):
        """``{job_id: runnable job}`` of the context `rows` (the columns
        `joined` adds); a job without a context row is left out (the
        runner loads it again, and finds it gone). A row that cannot be
        made a job (an unknown job type) is left out too: the runner's
        load turns it into an `UnloadableJob`."""
        loader = _loader(self.context_class)
        store = get_store()
        convert = result_class(store).set_variable
        position = loader.job_position
        jobs = {}
        for row in rows:
            if row[position] is None:
                continue
            try:
                job = self.make(LeanContext(loader, row, convert))
            except LOAD_ERRORS:
                continue
            jobs[row[position]] = job
        return jobs


def load_contexts(context_class, job_ids):
    """``{job_id: LeanContext}`` of the rows of `context_class` (a Storm
    class with a ``job_id`` column) for `job_ids`, in one statement."""
    loader = _loader(context_class)
    store = get_store()
    convert = result_class(store).set_variable
    position = loader.job_position
    return {row[position]: LeanContext(loader, row, convert)
            for row in loader.rows(store, job_ids)}


class LeanContext:
    """A context row as read, its columns converted when first read; the
    Storm object of the row once anything else is asked of it (see the
    module's docstring)."""

    # The columns read so far are in the instance's ``__dict__``: the
    # next read of one is a plain attribute (no `__getattr__`, which
    # Python calls only after a failed lookup has raised). It is emptied
    # when the context becomes a Storm object.
    __slots__ = ("_loader", "_row", "_convert", "_handed", "_orm",
                 "__dict__")

    def __init__(self, loader, row, convert):
        setter = object.__setattr__
        setter(self, "_loader", loader)
        setter(self, "_row", row)
        setter(self, "_convert", convert)
        setter(self, "_handed", None)
        setter(self, "_orm", None)
        # JSON is read now, as Storm reads it: a value that is not JSON
        # makes the job unloadable (a JobLoadError), not a failing run.
        values = self.__dict__
        for name, position, items, plain in loader.eager:
            raw = row[position]
            if items is not None:
                # An enumerated value: converted once per value read.
                value = items.get(raw, _UNREAD)
                if value is _UNREAD:
                    value = items[raw] = self._variable(position, raw).get()
                values[name] = value
                continue
            # A mutable value: `settle` compares it with what was read
            # (the JSON text as read, else the value serialized) to find
            # whether the job changed it in place.
            if plain and raw.__class__ is str:
                variable = None
                value = decode_json(raw)  # what Storm's JSON variable does
                read = raw
            else:
                variable = self._variable(position, raw)
                value = variable.get()
                read = raw if isinstance(raw, str) else variable.get(
                    to_db=True)
            values[name] = value
            if self._handed is None:
                setter(self, "_handed", {})
            self._handed[name] = (variable, value, read)

    def __getattr__(self, name):
        if name.startswith("__"):
            # Storm's and copy's probes: not a context attribute.
            raise AttributeError(name)
        orm = self._orm
        if orm is None:
            position = self._loader.positions.get(name)
            if position is not None:
                return self._read(name, position)
            orm = self.storm_object()
        return getattr(orm, name)

    def __setattr__(self, name, value):
        setattr(self.storm_object(), name, value)

    def __delattr__(self, name):
        delattr(self.storm_object(), name)

    def __repr__(self):
        if self._orm is not None:
            return repr(self._orm)
        return "<%s row for job %s (not loaded)>" % (
            self._loader.cls.__name__, self._row[self._loader.job_position])

    def _read(self, name, position):
        """Read the column at `position` (not one of the loader's eager
        columns, which the context read when it was made)."""
        value = self.__dict__[name] = self._variable(
            position, self._row[position]).get()
        return value

    def _variable(self, position, raw):
        """The column at `position`'s Storm variable, set to `raw` as read
        from the database."""
        variable = self._loader.variable(position)
        if raw is None:
            variable.set(None, from_db=True)
        else:
            self._convert(variable, raw)
        return variable

    def _changed(self):
        """``[(name, value)]`` of the JSON (mutable) values handed out and
        changed in place since: serialized, they differ from the value as
        read serialized the same way (the text as read, when it is
        already in that form: the common case needs no second one)."""
        if not self._handed:
            return []
        changed = []
        for name, (variable, value, read) in self._handed.items():
            try:
                now = encode_json(value) if variable is None else \
                    variable.get(to_db=True)
            except RecursionError:
                # It holds itself: Storm says so when it writes it.
                changed.append((name, value))
                continue
            if now != read and now != self._serialized(name, read):
                changed.append((name, value))
        return changed

    def _serialized(self, name, read):
        """`read` (a column's value as read) as Storm serializes it."""
        if read is None:
            return None
        return self._variable(self._loader.positions[name], read).get(
            to_db=True)

    def storm_object(self):
        """The Storm object of this row (built from the row already read,
        no query), carrying over values changed in place."""
        orm = self._orm
        if orm is None:
            row = self._row
            if self._handed:
                # The row as read: psycopg2 hands a jsonb value over as the
                # very object the job may have changed since.
                row = list(row)
                positions = self._loader.positions
                for name, (_, _, read) in self._handed.items():
                    row[positions[name]] = read
            # In the store of now: a job's code that closed the store it
            # was claimed in leaves the next jobs a new one.
            orm = load_object(get_store(), self._loader.cls, row)
            object.__setattr__(self, "_orm", orm)
            # From now on every attribute is the Storm object's.
            self.__dict__.clear()
            for name, value in self._changed():
                setattr(orm, name, value)
            object.__setattr__(self, "_handed", None)
        return orm


def storm_object(context):
    """`context`'s Storm object if it has one now (a `LeanContext` not
    yet turned into one has none), else None; `context` itself if it is
    not lean."""
    if isinstance(context, LeanContext):
        return context._orm
    return context


def settle(context):
    """Write what the job changed in place in a lean `context`'s JSON
    values (through its Storm object, flushed with the job's work)."""
    if isinstance(context, LeanContext) and context._orm is None \
            and context._handed and context._changed():
        context.storm_object()
