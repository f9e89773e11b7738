"""Fixtures for tests against real Celery brokers and workers.

- `BrokerFixture`: RabbitMQ or Redis on this machine (started when down,
  else a clear failure, never a skip), and queue names of the test's own.
- `PrivateRedisFixture`: a redis-server of the test's own, on a free port,
  that the test may stop and start (a broker outage).
- `CeleryWorkerFixture`: ``jobs celery-worker`` as a subprocess, with
  its log in a file.
"""

__all__ = [
    "BrokerFixture",
    "CeleryWorkerFixture",
    "PrivateRedisFixture",
    "celery_config",
]

import itertools
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid

import fixtures

BROKERS = {
    # kind: (URL, port, the commands that start it on this kind of machine)
    "amqp": ("amqp://guest:guest@127.0.0.1:5672//", 5672,
             ["rabbitmq-server -detached", "service rabbitmq-server start"]),
    "redis": ("redis://127.0.0.1:6379/0", 6379,
              ["redis-server --daemonize yes --bind 127.0.0.1 -::1"
               " --port 6379 --save '' --appendonly no --dir /var/lib/redis"
               " --logfile /var/log/redis/ci.log",
               "redis-server --daemonize yes --save '' --appendonly no"]),
}
_counter = itertools.count(1)


def port_open(port, host="127.0.0.1"):
    """True when something accepts TCP connections on `port`."""
    try:
        socket.create_connection((host, port), timeout=1).close()
    except OSError:
        return False
    return True


def wait_until(predicate, timeout, interval=0.05):
    """Poll `predicate` until it is true or `timeout` seconds pass;
    return its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


def celery_config(broker_url, prefix, time_limits=None, sweep_grace=0):
    """Config text: ``[celery]`` on `broker_url` with queues named
    ``<prefix>_jobs`` and ``<prefix>_slow``, and a Celery-enabled job
    section ``do_foo_celery`` (DoFooJob).

    :param time_limits: ``{"jobs": (soft, hard), "slow": ...}`` seconds.
    """
    limits = time_limits or {"jobs": (60, 90), "slow": (120, 150)}
    return (
        "[celery]\n"
        "broker_url: %(url)s\n"
        "default_queue: %(prefix)s_jobs\n"
        "fallback_queue: %(prefix)s_slow\n"
        "time_limits: %(limits)s\n"
        "publish_retries: 0\n\n"
        "[do_foo_celery]\n"
        "dbuser: dofoo\n"
        "source_interface: jobs.testing.foojob.IDoFooJobSource\n"
        "celery_dispatch: true\n"
        "celery_sweep_grace: %(grace)s\n" % {
            "url": broker_url, "prefix": prefix, "grace": sweep_grace,
            "limits": " ".join("%s_%s=%s:%s" % (prefix, name, soft, hard)
                               for name, (soft, hard) in limits.items())})


class BrokerFixture(fixtures.Fixture):
    """A running broker of `kind` (``"amqp"`` or ``"redis"``).

    Started when it is down; a broker that cannot be started fails the
    test with the command tried. Queues are named after `prefix`, unique
    to the test, and deleted afterwards.

    :ivar url: the broker URL.
    :ivar prefix: the test's queue-name prefix.
    """

    def __init__(self, kind, url=None):
        super().__init__()
        self.kind = kind
        self.url = url or BROKERS[kind][0]

    def _setUp(self):
        _, port, commands = BROKERS[self.kind]
        if not port_open(port):
            for command in commands:
                if subprocess.run(command, shell=True, capture_output=True,
                                  timeout=120).returncode == 0:
                    break
            # RabbitMQ takes a while to open its port.
            if not wait_until(lambda: port_open(port), 120, 0.2):
                raise RuntimeError(
                    "The %s broker is not reachable on 127.0.0.1:%d and"
                    " could not be started with %s." % (
                        self.kind, port, " / ".join(commands)))
        self.prefix = "t%d_%s_%d" % (os.getpid(), uuid.uuid4().hex[:6],
                                     next(_counter))
        self.queues = ["%s_jobs" % self.prefix, "%s_slow" % self.prefix]
        self.addCleanup(self.delete_queues)

    def connection(self):
        from kombu import Connection
        return Connection(self.url, connect_timeout=5)

    def queue_length(self, queue):
        """The number of messages waiting in `queue` (0 if none exists)."""
        from kombu.exceptions import ChannelError
        with self.connection() as connection:
            try:
                return connection.default_channel.queue_declare(
                    queue=queue, passive=True).message_count
            except ChannelError:
                return 0

    def take(self, queue):
        """Remove and return the messages waiting in `queue`, as
        ``(task name, args, [hard, soft] time limits, countdown ETA)``."""
        taken = []
        with self.connection() as connection:
            channel = connection.default_channel
            while True:
                message = channel.basic_get(queue, no_ack=True)
                if message is None:
                    return taken
                message = channel.message_to_python(message)
                headers = message.headers
                args = message.decode()[0]
                taken.append((headers["task"], list(args),
                              list(headers["timelimit"]), headers["eta"]))

    def delete_queues(self):
        from kombu.exceptions import ChannelError
        with self.connection() as connection:
            for queue in self.queues:
                try:
                    connection.default_channel.queue_delete(queue)
                except ChannelError:
                    pass


class PrivateRedisFixture(fixtures.Fixture):
    """A redis-server of this test's own on a free port, not persisted.

    :ivar url: its broker URL.
    """

    def _setUp(self):
        if shutil.which("redis-server") is None:
            raise RuntimeError("redis-server is not installed (apt-get"
                               " install redis-server).")
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = "redis://127.0.0.1:%d/0" % self.port
        self.folder = self.useFixture(fixtures.TempDir()).path
        self.process = None
        self.addCleanup(self.stop)

    def start(self):
        """Start the server and wait until it accepts connections."""
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--dir", self.folder],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if not wait_until(lambda: port_open(self.port), 30):
            raise RuntimeError("redis-server did not start on port %d."
                               % self.port)

    def stop(self):
        """Stop the server (its data goes with it)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(30)
        self.process = None


class CeleryWorkerFixture(fixtures.Fixture):
    """``python -m jobs celery-worker`` in a subprocess, configured by the
    environment (``JOBS_CONFIG``, ``JOBS_DATABASE_URI``).

    :param queues: the queues it consumes.
    :param concurrency: its worker processes.
    :ivar log_path: the file its log goes to.
    """

    def __init__(self, queues, concurrency=1, name=None):
        super().__init__()
        self.queues = queues
        self.concurrency = concurrency
        self.name = name or "w%d" % next(_counter)

    def _setUp(self):
        folder = tempfile.mkdtemp(prefix="jobs-celery-worker-")
        self.addCleanup(shutil.rmtree, folder, True)
        # What it logged stays readable (test details) once it is gone.
        self.addCleanup(self._keep_text)
        self._kept = None
        self.log_path = os.path.join(folder, "worker.log")
        self.log = open(self.log_path, "w")
        self.addCleanup(self.log.close)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "jobs", "celery-worker",
             "-Q", ",".join(self.queues), "-c", str(self.concurrency),
             "-n", "%s-%d@%%h" % (self.name, os.getpid())],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log)
        self.addCleanup(self.stop)

    def text(self):
        """What the worker has logged so far."""
        if self._kept is not None:
            return self._kept
        with open(self.log_path) as f:
            return f.read()

    def _keep_text(self):
        self._kept = self.text()

    def wait_ready(self, timeout=60):
        """Wait until the worker consumes; raise with its log if not."""
        if not wait_until(lambda: " ready." in self.text()
                          or self.process.poll() is not None, timeout):
            raise AssertionError("The Celery worker did not start within"
                                 " %d s:\n%s" % (timeout, self.text()))
        if self.process.poll() is not None:
            raise AssertionError("The Celery worker exited (%s):\n%s"
                                 % (self.process.returncode, self.text()))

    def stop(self):
        """Warm shutdown (SIGTERM), then SIGKILL after 20 s."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
