"""Stores: the ``main`` ZStorm store, one per database role, per thread.

The framework talks to one named ZStorm store, ``main``, joined to the
`transaction` package: ``transaction.commit()`` / ``abort()`` end it.
PostgreSQL connections run READ COMMITTED (Storm's default REPEATABLE READ
turns every contended claim into a serialization failure) in the UTC time
zone. SQLite, the embedded default, runs in WAL mode with foreign keys on
and every transaction started ``BEGIN IMMEDIATE``: one writer at a time,
never a stale read snapshot that would make a later write fail (see
`jobs.database.stormext`).

Runners connect as their section's database role (`set_role`): each role
has a store of its own, logged in as that role, so job code cannot
``RESET ROLE`` its way to more.
"""

__all__ = [
    "collect_garbage",
    "connect",
    "disconnect",
    "dsn",
    "forget_store",
    "freeze_long_lived",
    "get_store",
    "get_zstorm",
    "like_escape",
    "quote_identifier",
    "role_uri",
    "set_role",
    "statement_timeout",
    "storm_uri",
    "uri_without_password",
]

import contextlib
import gc
import os
import threading

import transaction
from storm.exceptions import DatabaseError as StormDatabaseError
from storm.uri import URI
from storm.zope.interfaces import IZStorm
from storm.zope.zstorm import ZStorm, ZStormError
from zope.component import getGlobalSiteManager, getSiteManager, queryUtility

from jobs.database.dialect import POSTGRESQL, SQLITE
from jobs.database.dialect import dialect as _dialect_of
from jobs.database import prepared
from jobs.database.stormext import SESSION_SETTINGS, dsn_of
from jobs.errors import DatabaseError

STORE_NAME = "main"
# The name of a role's store: "main as <role>".
ROLE_STORE_PREFIX = STORE_NAME + " as "

# A user's URI scheme -> (our Storm scheme, its dialect).
_SCHEMES = {
    "postgres": ("jobs-postgres", POSTGRESQL),
    "postgresql": ("jobs-postgres", POSTGRESQL),
    "sqlite": ("jobs-sqlite", SQLITE),
}
_DIALECTS = {scheme: found for scheme, found in _SCHEMES.values()}

# The database role this thread runs as (None: the login role of the
# configured URI).
_session = threading.local()
# {(URI, role): (store name, role's URI)}
_role_stores = {}


def quote_identifier(name):
    """Quote `name` as a PostgreSQL identifier."""
    return '"%s"' % name.replace('"', '""')


def like_escape(text):
    """`text` as a LIKE pattern that matches it only (backslash escapes)."""
    return (text.replace("\\", "\\\\").replace("%", "\\%")
            .replace("_", "\\_"))


def storm_uri(uri):
    """Translate a user's ``postgres:``/``sqlite:`` URI into ours.

    :raises DatabaseError: for any other scheme.
    """
    scheme, sep, rest = uri.partition(":")
    if not sep or scheme not in _SCHEMES:
        raise DatabaseError(
            "Unsupported database URI %r: use postgres://... or "
            "sqlite:/path/to/file.db" % (uri,))
    return "%s:%s" % (_SCHEMES[scheme][0], rest)


# The `IZStorm` utility and the utility registry it was found in:
# `get_store` runs several times a job, and the lookup cost more than the
# rest of it (issue 15). A registry cleared since (zope.component.testing)
# has new ``utilities``, and is asked again.
_zstorm = {}


def get_zstorm():
    """Return the registered `IZStorm` utility, registering one if needed."""
    utilities = getattr(getSiteManager(), "utilities", None)
    found = _zstorm.get("found")
    if found is not None and found[0] is utilities:
        return found[1]
    zstorm = queryUtility(IZStorm)
    if zstorm is None:
        zstorm = ZStorm()
        getGlobalSiteManager().registerUtility(zstorm, IZStorm)
    if utilities is not None:
        _zstorm["found"] = (utilities, zstorm)
    return zstorm


def connect(uri, session=None, prepared_statements=None):
    """Make `uri` the database of the ``main`` store.

    Closes this thread's ``main`` store if it pointed elsewhere.

    :param uri: ``postgres://user@host:port/db`` or ``sqlite:/path.db``.
    :param session: PostgreSQL settings of the connections made from now
        on, ``{setting: seconds or None}`` (``lock_timeout``,
        ``idle_in_transaction_session_timeout``; see the configuration's
        ``session_settings``).
    :param prepared_statements: send the runners' hot statements as
        prepared statements (`jobs.database.prepared`); None: as before.
    :raises DatabaseError: for an unsupported URI.
    """
    if prepared_statements is not None:
        prepared.set_enabled(prepared_statements)
    if session is not None:
        SESSION_SETTINGS.clear()
        SESSION_SETTINGS.update(session)
    zstorm = get_zstorm()
    translated = storm_uri(uri)
    if zstorm.get_default_uris().get(STORE_NAME) == translated:
        return
    disconnect()
    parsed = URI(translated)
    if parsed.scheme == "jobs-sqlite" and parsed.database:
        # The embedded default must work on a fresh checkout.
        folder = os.path.dirname(os.path.abspath(parsed.database))
        os.makedirs(folder, exist_ok=True)
    zstorm.set_default_uri(STORE_NAME, translated)


def disconnect():
    """Abort the transaction and close this thread's stores."""
    transaction.abort()
    _session.role = None
    zstorm = queryUtility(IZStorm)
    if zstorm is None:
        return
    for name, store in list(zstorm.iterstores()):
        if name == STORE_NAME or name.startswith(ROLE_STORE_PREFIX):
            zstorm.remove(store)
            store.close()


def forget_store(store):
    """Drop `store` (closed by someone else's code) from this thread's
    stores: the next `get_store` opens a new connection."""
    zstorm = get_zstorm()
    try:
        zstorm.remove(store)
    except Exception:
        pass  # not one of ours, or already gone
    transaction.abort()


def get_store():
    """Return this thread's ``main`` store, joined to the transaction:
    connected as the role `set_role` chose, if any.

    :raises DatabaseError: when `connect` was never called, or the
        database cannot be reached as that role.
    """
    zstorm = get_zstorm()
    name = STORE_NAME
    role = getattr(_session, "role", None)
    uris = None
    if role is None:
        # The runner's hot path (several calls a job): no copy of the
        # default URIs when the store is there or can be made.
        try:
            return zstorm.get(name)
        except ZStormError:
            uris = {}
        except StormDatabaseError as e:
            raise _unreachable(zstorm, name, e) from None
    if uris is None:
        uris = zstorm.get_default_uris()
    if STORE_NAME not in uris:
        raise DatabaseError(
            "No database configured: call jobs.database.connect(uri) first"
            " (run_jobs.py and the jobs command connect to the configured"
            " [database] uri themselves).")
    if role is not None:
        # The runner's hot path: no URI parsing per call.
        key = (uris[STORE_NAME], role)
        named = _role_stores.get(key)
        if named is None:
            named = _role_stores[key] = (
                ROLE_STORE_PREFIX + role, role_uri(uris[STORE_NAME], role))
        name, uri = named
        if uris.get(name) != uri:
            zstorm.set_default_uri(name, uri)
    try:
        return zstorm.get(name)
    except StormDatabaseError as e:
        raise _unreachable(zstorm, name, e) from None


def _unreachable(zstorm, name, error):
    # libpq's messages span lines; an operator's log wants one.
    return DatabaseError("Cannot connect to the database %s: %s" % (
        uri_without_password(zstorm.get_default_uris()[name]),
        " ".join(str(error).split())))


def role_uri(uri, role):
    """`uri` (a store URI) logging in as `role`, without the login role's
    password: the role's own comes from libpq (``~/.pgpass``,
    ``PGPASSFILE``, or a ``passfile`` option in the URI)."""
    parsed = URI(uri)
    parsed.username = role
    parsed.password = None
    return str(parsed)


def uri_without_password(uri):
    """`uri` fit for a log line: its password, if any, as <redacted>."""
    parsed = URI(uri)
    if parsed.password:
        parsed.password = "<redacted>"
    return str(parsed).replace("jobs-", "", 1)


def dsn(store):
    """The libpq connection string of `store`'s PostgreSQL database."""
    return dsn_of(store.get_database())


def set_role(role):
    """Make `get_store` in this thread return a store connected as the
    PostgreSQL `role` (None: the login role of the URI given to
    `connect`), and return it.

    Each role's store is opened once per thread and kept; switching
    neither commits nor aborts. Where the database has no roles (SQLite)
    the one store is returned.

    :raises DatabaseError: when the database cannot be reached as `role`
        (it does not exist, may not log in, or the server is down) —
        with the previous role still in force.
    """
    previous = getattr(_session, "role", None)
    uri = get_zstorm().get_default_uris().get(STORE_NAME, "")
    found = _DIALECTS.get(uri.partition(":")[0], SQLITE)
    _session.role = role if found.roles else None
    try:
        return get_store()
    except DatabaseError:
        _session.role = previous
        raise


# Jobs run since the last `collect_garbage` collection.
_uncollected = [0]
COLLECT_EVERY = 100


def collect_garbage(jobs=COLLECT_EVERY):
    """Collect the young generations of Python's garbage once
    `COLLECT_EVERY` jobs have run since the last time.

    Storm's per-object bookkeeping forms reference cycles, and every
    commit revisits each object Storm still tracks, dead or not: runners
    call this after every batch of `jobs` so that commits stay cheap. A
    batch of one job does not pay a collection of its own (measured for
    issue 15: a sixth of the runner's own time a job).
    """
    _uncollected[0] += jobs
    if _uncollected[0] >= COLLECT_EVERY:
        _uncollected[0] = 0
        gc.collect(1)


_frozen = []


def freeze_long_lived():
    """Once per process, before its first run: collect all garbage, then
    move every object alive now (modules, configuration, the component
    registry: what lives as long as the process) to the collector's
    permanent generation (`gc.freeze`), so that its full collections no
    longer walk them. Measured (issue 15): in a group commit the three
    full collections of 5,000 jobs took 9% of the time; frozen, 0%.
    Collection itself stays on."""
    if not _frozen:
        _frozen.append(True)
        gc.collect()
        gc.freeze()


@contextlib.contextmanager
def statement_timeout(seconds):
    """Within the block, this thread's store (as its current role) cancels
    any statement that runs longer than `seconds` (None: no limit; no
    effect on SQLite). Commits the setting: a SET made inside a
    transaction that is later rolled back would be undone."""
    store = get_store()
    if seconds is None or not _dialect_of(store).roles:
        yield
        return
    store.execute("SET statement_timeout = %d" % max(1, seconds * 1000))
    transaction.commit()
    try:
        yield
    finally:
        transaction.abort()
        try:
            get_store().execute("SET statement_timeout = 0")
            transaction.commit()
        except StormDatabaseError:
            transaction.abort()  # the connection is gone: so is the SET
