"""``python -m jobs.cli``: the `jobs` command."""

import sys

from jobs.cli.main import main

sys.exit(main())
