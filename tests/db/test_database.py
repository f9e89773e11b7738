"""`jobs.database`: a store per database role, connected as that role."""

import transaction
from storm.uri import URI

from jobs.database import (
    connect,
    disconnect,
    get_store,
    role_uri,
    set_role,
)
from jobs.errors import DatabaseError
from jobs.testing.fixtures import TEST_ROLES
from jobs.testing.testcase import DatabaseTestCase, TestCase

ROLE = TEST_ROLES[0]


class TestRoleURI(TestCase):

    def test_the_role_logs_in_without_the_login_roles_password(self):
        uri = role_uri(
            "jobs-postgres://admin:secret@db:5433/app?sslmode=require", "dofoo")
        parsed = URI(uri)
        self.assertEqual(
            ("dofoo", None, "db", 5433, "app", {"sslmode": "require"}),
            (parsed.username, parsed.password, parsed.host, parsed.port,
             parsed.database, parsed.options))


class TestSetRolePostgreSQL(DatabaseTestCase):

    database_kind = "postgresql"
    __test__ = True

    def session_user(self):
        user = get_store().execute("SELECT session_user").get_one()[0]
        transaction.abort()
        return user

    def test_the_store_logs_in_as_the_role(self):
        login = self.session_user()
        role_store = set_role(ROLE)
        self.addCleanup(set_role, None)
        self.assertIs(role_store, get_store())
        self.assertEqual(ROLE, self.session_user())
        set_role(None)
        self.assertEqual(login, self.session_user())
        self.assertNotEqual(ROLE, login)

    def test_switching_back_reuses_the_roles_connection(self):
        first = set_role(ROLE)
        self.addCleanup(set_role, None)
        backend = first.execute("SELECT pg_backend_pid()").get_one()[0]
        transaction.abort()
        set_role(None)
        second = set_role(ROLE)
        self.assertIs(first, second)
        self.assertEqual(
            backend, second.execute("SELECT pg_backend_pid()").get_one()[0])

    def test_a_role_that_cannot_log_in_leaves_the_previous_one(self):
        set_role(ROLE)
        self.addCleanup(set_role, None)
        error = self.assertRaises(
            DatabaseError, set_role, "no_such_role_anywhere")
        self.assertIn('role "no_such_role_anywhere" does not exist',
                      str(error))
        self.assertEqual(ROLE, self.session_user())

    def test_disconnect_forgets_the_role(self):
        set_role(ROLE)
        disconnect()
        connect(self.db.uri)
        self.assertNotEqual(ROLE, self.session_user())


class TestSetRoleSQLite(DatabaseTestCase):

    database_kind = "sqlite"
    __test__ = True

    def test_roles_do_not_exist_one_store_serves(self):
        main = get_store()
        self.addCleanup(set_role, None)
        self.assertIs(main, set_role(ROLE))
        self.assertIs(main, get_store())
