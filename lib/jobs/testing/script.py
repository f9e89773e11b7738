"""Running scripts in a subprocess, as cron would, and the ``jobs``
command in this process."""

__all__ = ["jobs_command", "run_script"]

import contextlib
import io
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))


def run_script(path, args=(), env=None, timeout=120):
    """Run the script `path` (relative to the project root) with `args`.

    Runs under this interpreter, with the current environment updated by
    `env`.

    :return: ``(returncode, stdout, stderr)``, text.
    """
    full_env = dict(os.environ)
    full_env.update(env or {})
    process = subprocess.run(
        [sys.executable, os.path.join(ROOT, path), *args],
        env=full_env, capture_output=True, text=True, timeout=timeout,
        stdin=subprocess.DEVNULL)
    return process.returncode, process.stdout, process.stderr


def jobs_command(store, *argv):
    """Run ``jobs ARGV...`` in this process, its output captured; then
    make `store` read the database again.

    :return: ``(exit code, stdout, stderr)``.
    """
    from jobs.cli import main
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    store.invalidate()
    return code, out.getvalue(), err.getvalue()
