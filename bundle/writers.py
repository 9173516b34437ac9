"""MONAI image writers that write under a temporary name and rename (no truncated outputs after a crash)."""

from __future__ import annotations

from monai.data import NibabelWriter

from .io import atomic_path

__all__ = ["AtomicNibabelWriter", "OverwritingAtomicNibabelWriter", "nifti_writer"]


class AtomicNibabelWriter(NibabelWriter):
    """NibabelWriter whose files appear only when complete; an existing file is an error."""

    overwrite = False

    def write(self, filename, verbose: bool = False, **obj_kwargs):  # type: ignore[override]
        with atomic_path(filename, overwrite=self.overwrite) as tmp:
            super().write(str(tmp), verbose=verbose, **obj_kwargs)


class OverwritingAtomicNibabelWriter(AtomicNibabelWriter):
    """The same, replacing existing files (the explicit overwrite switch)."""

    overwrite = True


def nifti_writer(overwrite: bool = False) -> type[NibabelWriter]:
    """The writer class for `SaveImaged(writer=...)`."""
    return OverwritingAtomicNibabelWriter if overwrite else AtomicNibabelWriter
