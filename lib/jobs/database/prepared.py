"""The runner's hot statements as server-side prepared statements.

A runner sends the same few statements for every job: the claim, the
record of a start, the outcomes, the lease renewal. Planning them costs
PostgreSQL more than running them (about 470 µs for the claim, measured
for issue 15), so on PostgreSQL `execute` sends each as ``PREPARE`` once
per database session and ``EXECUTE`` from then on. A session that ends
(a reconnect, a terminated backend) takes its prepared statements with
it; the new session prepares them again at their first use (the state is
kept on the session: `jobs.database.stormext.raw_session_state`).

Prepared statements live in the server session, so a connection pooler
that hands each transaction a different server session (PgBouncer in
transaction mode) must not see them: ``[database] prepared_statements:
false`` (`set_enabled`) sends the same SQL as plain statements. SQLite
always gets plain statements.

An ``EXECUTE`` goes to psycopg2 past Storm's result, tracing and
parameter-mark layers (`jobs.database.stormext.direct_execute`: about
40 µs of a per-job runner's 500 µs of client CPU a job), with Storm's
flush, transaction join, exceptions and reconnection; through Storm
itself when a tracer is installed (it sees every statement), savepoints
are pending or the connection is not plainly connected.

Statements are written with Storm's ``?`` marks; a parameter whose type
PostgreSQL cannot infer from its use carries a cast in the SQL
(``?::integer[]``), which holds in both forms.
"""

__all__ = ["enabled", "execute", "numbered", "set_enabled", "sql_of"]

import hashlib

from jobs.database.stormext import direct_execute, raw_session_state

_settings = {"enabled": True}
# SQL text -> (statement name, PREPARE text, EXECUTE text).
_forms = {}
# statement name -> SQL text.
_names = {}


def set_enabled(flag):
    """Send the hot statements as prepared statements (True, the
    default) or as plain statements (False: a transaction-pooling
    proxy in front of PostgreSQL)."""
    _settings["enabled"] = bool(flag)


def enabled():
    """Whether PostgreSQL statements are sent prepared."""
    return _settings["enabled"]


def _form(sql):
    form = _forms.get(sql)
    if form is None:
        name = "jobs_" + hashlib.sha1(sql.encode()).hexdigest()[:24]
        text, count = numbered(sql)
        execute_sql = "EXECUTE %s" % name
        if count:
            execute_sql += "(%s)" % ", ".join(["?"] * count)
        form = _forms[sql] = (name, "PREPARE %s AS %s" % (name, text),
                              execute_sql, execute_sql.replace("?", "%s"))
        _names[name] = sql
    return form


def sql_of(statement):
    """The SQL that `statement` (as a tracer sees it) stands for: an
    ``EXECUTE`` of ours is shown as the statement it runs, anything else
    (its ``PREPARE`` too) as it is."""
    head = statement[:60].split(None, 2)
    if len(head) >= 2 and head[0] == "EXECUTE":
        name = head[1].split("(")[0]
        if name in _names:
            return _names[name]
    return statement


def numbered(sql):
    """`sql` with its ``?`` marks (outside string literals) as ``$1``,
    ``$2``...; and how many there are."""
    parts = sql.split("'")
    count = 0
    for index in range(0, len(parts), 2):  # outside the quotes
        pieces = parts[index].split("?")
        text = pieces[0]
        for piece in pieces[1:]:
            count += 1
            text += "$%d%s" % (count, piece)
        parts[index] = text
    return "'".join(parts), count


def execute(store, sql, parameters=(), alone=False):
    """``store.execute(sql, parameters)``, as a prepared statement on
    PostgreSQL unless turned off (`set_enabled`); prepared on this
    session at its first use.

    :param alone: a transaction of its own, committed, when no transaction
        is open (see `jobs.database.stormext.direct_execute`): the
        result's ``committed`` is then true (a Storm result has no
        ``committed``: read it with ``getattr(result, "committed",
        False)``).

    :return: Storm's result, as ``store.execute`` returns it, or a
        `jobs.database.stormext.DirectResult` (read the same way: rows,
        ``get_all``, ``get_one``, ``rowcount``).
    :raises storm.exceptions.DatabaseError: as ``store.execute``; a
        failed ``PREPARE`` is not remembered (it is sent again).
    """
    if not _settings["enabled"]:
        return store.execute(sql, parameters)  # (never alone: PgBouncer)
    state = raw_session_state(store)
    if state is None:
        return store.execute(sql, parameters)
    name, prepare, execute_sql, direct_sql = _form(sql)
    prepared = state.setdefault("prepared", set())
    if name not in prepared:
        store.execute(prepare, noresult=True)
        prepared.add(name)
    result = direct_execute(store, direct_sql, parameters, alone)
    if result is None:
        return store.execute(execute_sql, list(parameters))
    return result
