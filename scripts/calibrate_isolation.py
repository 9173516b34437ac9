#!/usr/bin/env python
"""Measure the rigid near-copy check of fold isolation (bundle/data/rigid_similarity.py) on datasets: the highest
correlation between different subjects, and the lowest for copies of the first subjects shifted by (3, -2, 2) voxels,
turned 5 degrees about z or x, or both, against the threshold.

    python scripts/calibrate_isolation.py data/simulated_quick/datalist.json data/cohorts/new_anatomy/datalist.json
"""

from __future__ import annotations

import itertools
import sys
import tempfile
import time
from pathlib import Path
from typing import Sequence

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the bundle root, so `bundle` imports from any folder

from bundle.command_line import OneLineArgumentParser
from bundle.errors import cli_errors


def build_parser() -> OneLineArgumentParser:
    p = OneLineArgumentParser(prog="calibrate_isolation.py", description=__doc__.splitlines()[0])
    p.add_argument("datalists", nargs="+")
    p.add_argument("--copies-of", default="4", help="make the moved copies of this many subjects per datalist")
    return p


@cli_errors
def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_and_log(argv)
    import nibabel as nib
    import numpy as np
    from scipy import ndimage

    from bundle.data import load_datalist
    from bundle.data.rigid_similarity import RIGID_DUPLICATE_CORRELATION, coarse_fingerprint, rigid_similarity

    moves = {
        "shift (3, -2, 2)": lambda v: ndimage.shift(v, (3, -2, 2), order=1),
        "turn 5 deg about z": lambda v: ndimage.rotate(v, 5, (0, 1), reshape=False, order=1),
        "turn 5 deg about x": lambda v: ndimage.rotate(v, 5, (1, 2), reshape=False, order=1),
        "turn -5 deg about z + shift (2, 3, 0)": lambda v: ndimage.shift(
            ndimage.rotate(v, -5, (0, 1), reshape=False, order=1), (2, 3, 0), order=1
        ),
    }
    print(f"threshold {RIGID_DUPLICATE_CORRELATION}")
    with tempfile.TemporaryDirectory() as tmp:
        for datalist in args.datalists:
            items = load_datalist(datalist)
            prints = {i["subject"]: coarse_fingerprint(i["image"]) for i in items}
            start = time.perf_counter()
            different = [rigid_similarity(prints[a], prints[b]) for a, b in itertools.combinations(prints, 2)]
            per_pair = (time.perf_counter() - start) / max(len(different), 1)
            copies = []
            for item in items[: int(args.copies_of)]:
                image = nib.load(item["image"])
                volume = np.asarray(image.get_fdata(dtype=np.float32))
                for k, move in enumerate(moves.values()):
                    path = Path(tmp) / f"{item['subject']}_{k}.nii.gz"
                    nib.save(nib.Nifti1Image(move(volume), image.affine), str(path))
                    copies.append(rigid_similarity(prints[item["subject"]], coarse_fingerprint(path)))
            print(
                f"{datalist}: different subjects max {max(different):.4f} ({len(different)} pairs, {per_pair:.2f} s per "
                f"pair); moved copies min {min(copies):.4f} ({len(copies)} copies: {', '.join(moves)})"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
