#!/usr/bin/env python
"""Build, verify or extract the model-zoo archive. See `python scripts/package.py --help`."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bundle.cli.package import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
