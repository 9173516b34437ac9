#!/usr/bin/env python
"""Score saved predictions with the bundle's metrics. See `python scripts/evaluate_predictions.py --help`."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bundle.cli.evaluate_predictions import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
