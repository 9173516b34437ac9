#!/usr/bin/env python
"""Export models/model.pt to TorchScript and ONNX. See `python scripts/export.py --help`."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bundle.cli.export import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
