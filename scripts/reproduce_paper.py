#!/usr/bin/env python
"""Entry point of bundle.cli.reproduce_paper. See `python scripts/reproduce_paper.py --help`."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bundle.cli.reproduce_paper import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
