"""Running scripts in a subprocess, as cron would."""

__all__ = ["run_script"]

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
