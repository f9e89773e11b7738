"""`PrivateClusterFixture`: a PostgreSQL server of the test's own.

Tests that stop or restart PostgreSQL must never touch the shared server
other test runs use: this fixture makes a throw-away cluster (``initdb``
into a temporary folder, started with ``pg_ctl`` on a free port, Unix
socket in that folder), and removes it afterwards. Running as root, the
server runs as the ``postgres`` OS user, as PostgreSQL insists.
"""

__all__ = ["PrivateClusterFixture"]

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile

import fixtures


def _bin(name):
    """The newest installed PostgreSQL's program `name`."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/%s" % name),
                   key=lambda path: int(path.split("/")[4]))
    return found[-1] if found else shutil.which(name) or name


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PrivateClusterFixture(fixtures.Fixture):
    """A running PostgreSQL cluster that only this test uses.

    :ivar server: its URI without a database, for `DatabaseFixture`.
    :ivar port: its TCP port on 127.0.0.1.
    """

    def _setUp(self):
        self.folder = tempfile.mkdtemp(prefix="jobs-cluster-")
        self.addCleanup(shutil.rmtree, self.folder, ignore_errors=True)
        self.data = os.path.join(self.folder, "data")
        self.log = os.path.join(self.folder, "server.log")
        self.port = _free_port()
        self._user = None
        if os.geteuid() == 0:
            # initdb and postgres refuse to run as root.
            self._user = "postgres"
            entry = pwd.getpwnam(self._user)
            os.chown(self.folder, entry.pw_uid, entry.pw_gid)
        self._run(_bin("initdb"), "-D", self.data, "-U", "postgres",
                  "-A", "trust", "--no-sync", "-E", "UTF8")
        self.server = "postgres://postgres@127.0.0.1:%d" % self.port
        self.start()
        self.addCleanup(self._discard)

    def _run(self, *argv):
        if self._user is not None:
            argv = ("runuser", "-u", self._user, "--") + argv
        result = subprocess.run(argv, capture_output=True, text=True,
                                stdin=subprocess.DEVNULL, timeout=120)
        if result.returncode:
            raise RuntimeError("%s failed (%d): %s%s" % (
                " ".join(argv), result.returncode, result.stderr,
                self._server_log()))
        return result

    def _server_log(self):
        try:
            with open(self.log) as f:
                return "\nServer log:\n" + f.read()[-4000:]
        except OSError:
            return ""

    def _ctl(self, command, *args):
        # fsync off: this cluster's data is thrown away, and the machine
        # is shared.
        options = ("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off"
                   % (self.port, self.folder))
        return self._run(_bin("pg_ctl"), command, "-D", self.data, "-w",
                         "-t", "60", "-l", self.log, "-o", options, *args)

    def _discard(self):
        # The test may have left it stopped: "not running" is fine here.
        try:
            self._ctl("stop", "-m", "immediate")
        except RuntimeError:
            pass

    def start(self):
        """Start the server; return once it accepts connections."""
        self._ctl("start")

    def stop(self):
        """Stop the server at once, dropping every connection ("fast")."""
        self._ctl("stop", "-m", "fast")

    def restart(self):
        """Stop the server ("fast": connections dropped) and start it."""
        self._ctl("restart", "-m", "fast")
