"""Secrets found by their look (`jobs.redaction`), whatever the names."""

import testtools

from jobs.redaction import DEFAULT_NAMES, Redactor


class TestByLook(testtools.TestCase):

    def check(self, cases, names=DEFAULT_NAMES):
        redactor = Redactor(names)
        self.assertEqual([expected for _, expected in cases],
                         [redactor.text(text) for text, _ in cases])

    def test_authorization_headers_of_any_scheme(self):
        self.check([
            ("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.e30.sig",
             "Authorization: <redacted>"),
            ("authorization: basic dXNlcjpwYXNz", "authorization: <redacted>"),
            ("{'Authorization': 'Basic dXNlcjpwYXNz', 'Accept': '*/*'}",
             "{'Authorization': '<redacted>', 'Accept': '*/*'}"),
            ('{"Proxy-Authorization": "Digest abcdef"}',
             '{"Proxy-Authorization": "<redacted>"}'),
            ("Authorization=tok3n-without-scheme", "Authorization=<redacted>"),
        ], names=())

    def test_bearer_tokens_anywhere_but_not_the_word(self):
        self.check([
            ("retrying with Bearer abcdefghijkl", "retrying with Bearer"
             " <redacted>"),
            ("the bearer of bad news", "the bearer of bad news"),
        ], names=())

    def test_uri_passwords(self):
        self.check([
            ("postgres://app:hunter2@db/app",
             "postgres://app:<redacted>@db/app"),
            ("redis://:s3cret@cache:6379/0",
             "redis://:<redacted>@cache:6379/0"),
            ("http://example.com/a:b@c", "http://example.com/a:b@c"),
        ], names=())

    def test_pem_private_keys_whole_or_cut(self):
        self.check([
            ("key -----BEGIN PRIVATE KEY-----\nMIIEvQ\n-----END PRIVATE"
             " KEY----- done",
             "key -----BEGIN PRIVATE KEY-----<redacted>-----END PRIVATE"
             " KEY----- done"),
            ("'-----BEGIN EC PRIVATE KEY-----\\nMHcCAQEE...",
             "'-----BEGIN EC PRIVATE KEY-----<redacted>"),
            ("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----",
             "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----"),
        ], names=())

    def test_the_wider_default_names(self):
        self.check([
            ("pwd=a auth: b private_key='c d' cookie=e session=f bearer=g",
             "pwd=<redacted> auth: <redacted> private_key=<redacted>"
             " cookie=<redacted> session=<redacted> bearer=<redacted>"),
        ])
        redactor = Redactor(DEFAULT_NAMES)
        self.assertEqual(
            [True] * 6 + [False],
            [redactor.is_secret(name) for name in (
                "pwd", "private_key", "bearer", "auth_header", "cookie",
                "session_id", "foo_id")])

    def test_names_are_configurable_as_before(self):
        # Only the configured names, by name; the looks still count.
        self.check([
            ("pwd=a pin=1234 Authorization: Bearer abcdefghij",
             "pwd=a pin=<redacted> Authorization: <redacted>"),
        ], names=("pin",))

    def test_upper_case_names_and_looks_are_found_and_plain_lines_kept(self):
        # One search of the lower-cased line decides whether the rules
        # are tried at all: upper case must not slip past it.
        self.check([
            ("PASSWORD=hunter2 done", "PASSWORD=<redacted> done"),
            ("AUTHORIZATION: Basic dXNlcjpwYXNz",
             "AUTHORIZATION: <redacted>"),
            ("POSTGRES://jobs:s3cret@db/jobs",
             "POSTGRES://jobs:<redacted>@db/jobs"),
            ("Running DoFooJob (ID 7), attempt 1",
             "Running DoFooJob (ID 7), attempt 1"),
        ])
        line = "Running DoFooJob (ID 7), attempt 1"
        self.assertIs(line, Redactor(DEFAULT_NAMES).text(line))
