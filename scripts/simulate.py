#!/usr/bin/env python
"""Write a simulated paired low-/full-dose PET dataset. See `python scripts/simulate.py --help`."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bundle.cli.simulate import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
