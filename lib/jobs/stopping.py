"""Stopping a runner process: on request, within a grace period, always.

`GracefulStop` is what SIGTERM and SIGINT mean to a runner (a cron run, a
worker): stop claiming, let the running job finish, give back the claimed
jobs that have not started, exit. A real signal therefore never raises
`KeyboardInterrupt` inside job code — so a `KeyboardInterrupt`,
`SystemExit` or any other exception raised by job code is the job's, and
fails that job, not the runner. Past the grace period a watchdog thread
ends the process: a thread, because a runner blocked in a database call
(a hung backend) runs no Python signal handler until the call returns;
for the same reason the signal itself is also read by a thread (from
``signal.set_wakeup_fd``'s pipe), which starts the grace period.

`exit_process` ends a runner's process once its work is done even if job
code left threads behind (which would otherwise keep it alive, and its
database connections open, for ever).
"""

__all__ = ["GracefulStop", "exit_process", "set_exit_grace"]

import logging
import os
import signal
import sys
import threading
import time

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)

# How long `exit_process` waits for threads job code left behind: the
# longest grace period of the sections this process ran.
_exit_grace = 30.0


def set_exit_grace(seconds):
    """Make `seconds` the default wait of `exit_process`."""
    global _exit_grace
    _exit_grace = seconds


class GracefulStop:
    """SIGTERM/SIGINT handling for the duration of a ``with`` block.

    Call it (``should_stop()``) to know whether a stop was asked for. In a
    thread other than the main one (where Python cannot install signal
    handlers) it only answers False.

    :param logger: where the stop is announced.
    :param grace_period: seconds the running job may take after the
        signal; then the process exits with status 1 (the job's lease
        hands it to another runner).
    :param wakeup_fd: a file descriptor every signal's number is written
        to as it arrives, so that a ``select`` on its other end wakes at
        once (the worker).
    """

    def __init__(self, logger=None, grace_period=30.0, wakeup_fd=None):
        self.logger = logger or logging.getLogger(__name__)
        self.grace_period = grace_period
        self.wakeup_fd = wakeup_fd
        self.stopping = False
        self.active = False
        self._previous = {}
        self._previous_wakeup = None
        self._watchdog = None
        # Taken by the first request, never given back.
        self._requested = threading.Lock()
        # The write end of the pipe the signals' numbers go to.
        self._signals = None

    def __call__(self):
        return self.stopping

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for signum in STOP_SIGNALS:
                self._previous[signum] = signal.signal(signum, self.request)
            # Python writes each signal's number to this pipe as it
            # arrives, even while the main thread is in a call that runs
            # no Python handler until it returns (a query on a hung
            # database session): a thread reading it makes the request
            # then, so the grace period runs from the signal.
            read_fd, self._signals = os.pipe()
            os.set_blocking(self._signals, False)
            self._previous_wakeup = signal.set_wakeup_fd(self._signals)
            threading.Thread(target=self._read_signals, args=(read_fd,),
                             name="jobs-signals", daemon=True).start()
            self.active = True
        return self

    def __exit__(self, *exc_info):
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}
        if self._signals is not None:
            signal.set_wakeup_fd(self._previous_wakeup)
            os.close(self._signals)  # the reading thread ends
            self._signals = None
        if self._watchdog is not None:
            self._watchdog.cancel()
        self.active = False

    def _read_signals(self, read_fd):
        """Request a stop for each stop signal's number read from
        `read_fd`, and pass every number on to `wakeup_fd` (a worker's
        wait ends early), until the pipe is closed."""
        stops = {int(signum) for signum in STOP_SIGNALS}
        try:
            while True:
                numbers = os.read(read_fd, 64)
                if not numbers:
                    return
                for number in numbers:
                    if number in stops:
                        self.request(number)
                if self.wakeup_fd is not None:
                    try:
                        os.write(self.wakeup_fd, numbers)
                    except OSError:
                        pass  # full: the wait ends anyway
        finally:
            os.close(read_fd)

    def request(self, signum=None, frame=None):
        """Stop claiming; let the running job finish; exit. A second
        request changes nothing (the grace period runs from the first).
        Made by the signal's handler or by the thread that reads the
        signals, whichever comes first."""
        if not self._requested.acquire(blocking=False):
            return
        self.stopping = True
        self.logger.info(
            "Received %s: stopping after the running job (grace %d s).",
            signal.Signals(signum).name if signum else "a stop request",
            self.grace_period)
        if signum is not None:
            self._watchdog = threading.Timer(self.grace_period,
                                             self._grace_expired)
            self._watchdog.daemon = True
            self._watchdog.start()

    def _grace_expired(self):
        self.logger.warning(
            "Grace period over (%s s): exiting; the running job's lease will"
            " hand it to another runner.", self.grace_period)
        _flush_logs()
        os._exit(1)


def exit_process(code, grace_period=None, logger=None):
    """Exit the process with `code` once its other threads are done, or
    after `grace_period` seconds: job code may have left non-daemon
    threads behind, which would keep the process (and its database
    connections) alive for ever. They are named at WARNING."""
    logger = logger or logging.getLogger(__name__)
    if grace_period is None:
        grace_period = _exit_grace
    deadline = time.monotonic() + max(0.0, grace_period)
    left = [thread for thread in threading.enumerate()
            if thread is not threading.current_thread()
            and not thread.daemon and thread.is_alive()]
    if left:
        logger.warning(
            "Job code left %d thread(s) running (%s): exiting once they"
            " end, at most %s s from now.", len(left),
            ", ".join(thread.name for thread in left), grace_period)
        for thread in left:
            thread.join(max(0.0, deadline - time.monotonic()))
    _flush_logs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _flush_logs():
    for handler in logging.getLogger().handlers:
        try:
            handler.flush()
        except Exception:
            pass
