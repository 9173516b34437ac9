#!/usr/bin/env python
"""Ship one cross-validation fold as models/model.pt. See `python scripts/release.py --help`."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bundle.cli.release import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
