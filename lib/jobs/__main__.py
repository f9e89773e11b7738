"""``python -m jobs``: the `jobs` command."""

import sys

from jobs.cli import main

sys.exit(main())
