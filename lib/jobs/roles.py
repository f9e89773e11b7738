"""Least privilege: one PostgreSQL role per section ``dbuser``, holding
only what its jobs need (``jobs db roles``).

A runner connects as each section's ``dbuser`` to run its jobs (so do
the process runner's children, Celery workers and the progress
connection): job code cannot ``RESET ROLE`` to the login role's
privileges, since it never had them. What that role may do is the sum
of:

- the framework's needs: SELECT on ``job`` and UPDATE of the columns a
  runner writes (`RUNNER_JOB_COLUMNS`: status, attempt, lease, dates, log,
  progress, result, dependency counters) — not ``max_retries``,
  ``priority``, the type or the data, and no INSERT or DELETE — INSERT on
  ``oops_report`` (the index of the OOPS reports its runner files),
  SELECT on ``job_dependency`` and the rate windows of ``job_rate``;
- what each source of the sections using that role declares with
  ``databasePrivileges()`` (`IJobSource`): its context tables (SELECT,
  UPDATE) and the tables its ``run()`` touches;
- USAGE on the sequences of the tables it may INSERT into, and SELECT on
  their primary key's columns (``store.add()`` reads the new row's key
  back with ``INSERT ... RETURNING``).

Which rows of ``job`` are the role's is row security's (migration 0014):
the plan records the kinds of job its sections run (``job_role_kind``,
LIKE patterns of ``job.kind`` from each source's ``jobKindPatterns``),
and the policies show the role those jobs, their dependents and their
dependencies only.

Applying a plan first revokes everything the role holds on the schema's
tables and sequences, so a job type that stops declaring a table loses
it. Roles are made with LOGIN and no password: give each one in
PostgreSQL (``ALTER ROLE … PASSWORD``) and to the runners through libpq
(``~/.pgpass``, ``PGPASSFILE``), or let ``pg_hba.conf`` trust or peer
authenticate them.
"""

__all__ = [
    "RUNNER_JOB_COLUMNS",
    "RoleError",
    "apply_roles",
    "plan_roles",
]

from collections import OrderedDict, namedtuple

import transaction

from jobs.database import dialect, quote_identifier
from jobs.errors import JobsError, SchemaError
from jobs.schema import check as check_schema
from jobs.sections import find_section_source

# The job columns a runner updates (claim, outcome, retry, log, progress).
# The result goes with COMPLETED; waiting_on and cancelled_by are the
# dependents' columns an outcome settles (`jobs.model.dependencies`).
RUNNER_JOB_COLUMNS = (
    "status", "attempt_count", "scheduled_start", "lease_expires",
    "date_started", "date_finished", "log", "progress", "claimed_by",
    "result", "waiting_on", "cancelled_by")

PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE")

# A role's plan: its sections' names, ``{table: set of privileges}``, and
# the kinds of job (``job.kind`` LIKE patterns) whose rows are its own.
RolePlan = namedtuple("RolePlan", "sections tables kinds")


class RoleError(JobsError):
    """Roles cannot be planned or made (a section's source, SQLite)."""


def _framework_privileges():
    # oops_report: the runner indexes the OOPS reports it files;
    # job_dependency: an outcome settles the job's dependents; job_rate:
    # a rate-limited section's claim counts its window there.
    return {"job": {"SELECT", "UPDATE (%s)" % ", ".join(RUNNER_JOB_COLUMNS)},
            "oops_report": {"INSERT"},
            "job_dependency": {"SELECT"},
            "job_rate": {"SELECT", "INSERT", "UPDATE"}}


def plan_roles(config):
    """Return ``{role: RolePlan}``.

    Sections without a ``dbuser`` run as the login role and are left out;
    sections sharing one ``dbuser`` share its privileges.

    :raises RoleError: when a section's source cannot be found or does
        not declare its privileges or its kinds of job
        (``jobKindPatterns``), or a privilege is not one of
        SELECT, INSERT, UPDATE, DELETE.
    """
    plan = OrderedDict()
    for name in config.job_section_names:
        try:
            section = config.job_section(name)
            source = find_section_source(config, name)
        except JobsError as e:
            raise RoleError(str(e)) from None
        if section.dbuser is None:
            continue
        declare = getattr(source, "databasePrivileges", None)
        if declare is None:
            raise RoleError(
                "Section %s: its source %r does not say what it needs"
                " (databasePrivileges)." % (name, source))
        kinds = getattr(source, "jobKindPatterns", None)
        if kinds is None:
            raise RoleError(
                "Section %s: its source %r does not say which kinds of job"
                " are its own (jobKindPatterns)." % (name, source))
        sections, tables, own = plan.setdefault(
            section.dbuser, RolePlan([], _framework_privileges(), set()))
        sections.append(name)
        own.update(kinds())
        for table, privileges in declare().items():
            unknown = set(privileges) - set(PRIVILEGES)
            if unknown:
                raise RoleError(
                    "Section %s: %s on %s is not one of %s." % (
                        name, ", ".join(sorted(unknown)), table,
                        ", ".join(PRIVILEGES)))
            tables.setdefault(table, set()).update(privileges)
    return plan


def _sequences(store, table):
    """The sequences that fill `table`'s serial columns."""
    rows = store.execute(
        "SELECT pg_get_serial_sequence(quote_ident(table_name),"
        " column_name) FROM information_schema.columns"
        " WHERE table_schema = current_schema() AND table_name = ?",
        (table,))
    return sorted(row[0] for row in rows if row[0])


def _key_reads(store, table):
    """``SELECT (columns)`` of `table`'s primary key; none if it has none."""
    columns = [row[0] for row in store.execute(
        "SELECT a.attname FROM pg_index i JOIN pg_attribute a"
        " ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)"
        " WHERE i.indrelid = ?::regclass AND i.indisprimary"
        " ORDER BY a.attnum", (quote_identifier(table),))]
    if not columns:
        return set()
    return {"SELECT (%s)" % ", ".join(quote_identifier(c) for c in columns)}


def _ordered(privileges):
    """Privileges in a stable order: plain ones first, columns last."""
    return sorted(privileges, key=lambda p: ("(" in p, p))


def _literal(text):
    """`text` as an SQL string literal (standard_conforming_strings)."""
    return "'%s'" % text.replace("'", "''")


def statements(store, role, tables, kinds=()):
    """The SQL that gives `role` exactly `tables`, and the rows of `job`
    whose ``kind`` matches one of `kinds` (see `plan_roles`)."""
    quoted = quote_identifier(role)
    schema = store.execute("SELECT current_schema()").get_one()[0]
    result = []
    login = store.execute(
        "SELECT rolcanlogin FROM pg_roles WHERE rolname = ?", (role,)
    ).get_one()
    if login is None:
        result.append("CREATE ROLE %s LOGIN" % quoted)
    elif not login[0]:
        result.append("ALTER ROLE %s LOGIN" % quoted)
    database = store.execute("SELECT current_database()").get_one()[0]
    result += [
        "GRANT CONNECT ON DATABASE %s TO %s"
        % (quote_identifier(database), quoted),
        "REVOKE ALL ON ALL TABLES IN SCHEMA %s FROM %s"
        % (quote_identifier(schema), quoted),
        "REVOKE ALL ON ALL SEQUENCES IN SCHEMA %s FROM %s"
        % (quote_identifier(schema), quoted),
        "GRANT USAGE ON SCHEMA %s TO %s" % (quote_identifier(schema), quoted),
    ]
    for table in sorted(tables):
        privileges = set(tables[table])
        if "INSERT" in privileges and "SELECT" not in privileges:
            # Storm's store.add() reads the new row's key back (INSERT
            # ... RETURNING), which needs SELECT on the key's columns.
            privileges.update(_key_reads(store, table))
        result.append("GRANT %s ON %s TO %s" % (
            ", ".join(_ordered(privileges)), quote_identifier(table),
            quoted))
        if "INSERT" in privileges:
            for sequence in _sequences(store, table):
                result.append("GRANT USAGE ON SEQUENCE %s TO %s"
                              % (sequence, quoted))
    # Row security (migration 0014): the role's own kinds of job.
    result.append("DELETE FROM job_role_kind WHERE role = %s"
                  % _literal(role))
    if kinds:
        result.append(
            "INSERT INTO job_role_kind (role, kind_pattern) VALUES %s"
            % ", ".join("(%s, %s)" % (_literal(role), _literal(kind))
                        for kind in sorted(kinds)))
    return result


def apply_roles(store, config, dry_run=False):
    """Create or narrow every section role to its plan; commit.

    :param dry_run: only return the statements.
    :return: ``[(role, sections, statements)]``.
    :raises RoleError: on SQLite (no roles), when the schema is missing
        or old, or see `plan_roles`.
    Aborts and re-raises when a statement fails.
    """
    if not dialect(store).roles:
        raise RoleError("Roles need PostgreSQL: the database is SQLite,"
                        " where every section runs as the file's user.")
    try:
        check_schema(store)  # row security's table and policies (0014)
    except SchemaError as e:
        raise RoleError(str(e)) from None
    finally:
        transaction.abort()
    done = []
    try:
        for role, (sections, tables, kinds) in plan_roles(config).items():
            sql = statements(store, role, tables, kinds)
            if not dry_run:
                for statement in sql:
                    store.execute(statement)
            done.append((role, sections, sql))
        if dry_run:
            transaction.abort()
        else:
            transaction.commit()
    except BaseException:
        transaction.abort()
        raise
    return done
