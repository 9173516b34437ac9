#!/usr/bin/env python
"""Entry point of bundle.cli.benchmark. See `python scripts/benchmark.py --help`."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bundle.cli.benchmark import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
