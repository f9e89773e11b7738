"""The public API's type hints hold: mypy passes over the modules that
pyproject.toml's ``[tool.mypy]`` lists, with every function annotated."""

import subprocess
import sys

import testtools

from jobs.testing.script import ROOT


class TestTypes(testtools.TestCase):

    def test_mypy_passes_on_the_public_modules(self):
        process = subprocess.run(
            [sys.executable, "-m", "mypy", "--no-error-summary"],
            cwd=ROOT, capture_output=True, text=True, timeout=600)
        self.assertEqual((0, ""), (process.returncode, process.stdout),
                         process.stderr)
