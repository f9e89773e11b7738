"""``jobs db``: install, upgrade and verify the schema; set up roles."""

__all__ = ["add_commands"]

from jobs import schema
from jobs.config import get_config
from jobs.database import get_store
from jobs.errors import CommandError, JobsError


def components():
    """The framework's migrations, then the application's."""
    return (schema.FRAMEWORK,) + get_config().migrations


def cmd_db_upgrade(options):
    applied = schema.upgrade(get_store(), components())
    print("Applied: %s" % (", ".join(
        "%s %04d_%s" % row for row in applied) or "nothing (up to date)"))


def cmd_db_verify(options):
    store = get_store()
    try:
        schema.check(store, components())
    except JobsError as e:
        print(str(e))
        return 1
    missing, unexpected = schema.differences(store, components())
    if missing or unexpected:
        print("The live schema differs from the migrations':")
        for line in missing:
            print("  missing:    %s" % line)
        for line in unexpected:
            print("  unexpected: %s" % line)
        return 1
    print("The schema is up to date.")


def cmd_db_roles(options):
    from jobs.roles import RoleError, apply_roles
    try:
        done = apply_roles(get_store(), get_config(), options.dry_run)
    except RoleError as e:
        raise CommandError(str(e)) from None
    if not done:
        print("No job section sets a dbuser: every section runs as the"
              " login role.")
    for role, sections, sql in done:
        print("%s role %s (sections: %s):" % (
            "Would set up" if options.dry_run else "Set up", role,
            ", ".join(sections)))
        for statement in sql:
            print("  %s;" % statement)


def add_commands(commands, parser_class):
    """Add ``db`` and its sub-commands to `commands` (argparse)."""
    db = commands.add_parser("db", help="install, upgrade or verify the schema")
    db_commands = db.add_subparsers(dest="db_command", required=True,
                                    parser_class=parser_class)
    db_commands.add_parser("upgrade", help="install or upgrade (idempotent)"
                           ).set_defaults(run=cmd_db_upgrade)
    db_commands.add_parser("verify", help="exit 1 if the schema is missing or"
                           " older than the code").set_defaults(run=cmd_db_verify)
    roles = db_commands.add_parser(
        "roles", help="create or narrow one PostgreSQL role per section"
        " dbuser, with only the privileges its job types declare")
    roles.add_argument("--dry-run", action="store_true",
                       help="print the statements, change nothing")
    roles.set_defaults(run=cmd_db_roles)
