"""`python -m driftlab ...`: the same as the `driftlab` command."""

import sys

from driftlab.cli import main

if __name__ == "__main__":
    sys.exit(main())
