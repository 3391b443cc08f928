"""`python -m sreops.cli …`: the `sreops` command, for a process started without the console script."""

import sys

from sreops.cli import main

sys.exit(main())
