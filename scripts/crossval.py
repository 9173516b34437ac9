#!/usr/bin/env python
"""Leave-one-out cross-validation of the bundle. See `python scripts/crossval.py --help`."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bundle.cli.crossval import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
