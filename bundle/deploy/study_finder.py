"""Find the studies to denoise in an input folder: NIfTI files and DICOM series folders at any depth; every other
entry is reported with the reason it is not a study.

A study's MR is not a study of its own: `<name>_t1.nii.gz` and `<name>_flair.nii.gz` (or `<name>_t1/`, a DICOM series
folder) beside the study `<name>` are attached to it as its `t1` and `flair` (for an MR-guided model; the PET-only
model ignores them), and one with no study `<name>` beside it is skipped with that reason. Likewise a NIfTI study's
BIDS-PET sidecar `<name>.json` is attached to it as its `sidecar` (the dose facts a `reference_protocol` reads its DRF
from: `header_dose.sidecar_dose`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from monai.data import Dataset

from ..errors import InputDataError

__all__ = ["MR_KEYS", "SIDECAR", "StudyFolder", "find_studies", "is_dicom_file", "mr_of", "scan_input", "study_name"]

NIFTI_SUFFIXES = (".nii.gz", ".nii")
MR_KEYS = ("t1", "flair")  # `<study>_<key>`: that study's MR contrast, never a study itself
SIDECAR = "sidecar"  # `<study>.json` beside a NIfTI study: its BIDS-PET sidecar


def mr_of(name: str) -> tuple[str, str] | None:
    """(study name, MR key) when a study name `name` is an MR companion (`<study>_t1`, `<study>_flair`), else None."""
    for key in MR_KEYS:
        if name.lower().endswith(f"_{key}") and len(name) > len(key) + 1:
            return name[: -len(key) - 1], key
    return None


def is_dicom_file(path: Path) -> bool:
    """A file with the DICOM preamble magic ('DICM' at byte 128) or a .dcm suffix."""
    if path.suffix.lower() == ".dcm":
        return True
    try:
        with open(path, "rb") as fh:
            fh.seek(128)
            return fh.read(4) == b"DICM"
    except OSError:
        return False


def _is_dicom_folder(folder: Path) -> bool:
    files = [p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")]
    return bool(files) and any(is_dicom_file(p) for p in files[:20])


def study_name(path: str | Path) -> str:
    """Output name of a study: the file name without .nii/.nii.gz, or the DICOM folder's name."""
    name = Path(path).name
    for suffix in NIFTI_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def _nested_name(root: Path, path: Path) -> str:
    """Output name of a study below the input folder: its path relative to the folder, joined by '_'."""
    parts = list(path.relative_to(root).parts)
    parts[-1] = study_name(parts[-1])
    return "_".join(parts)


def scan_input(input_path: str | Path | None) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
    """Studies under `input_path` and every entry that is not one, with the reason.

    `input_path` may be a NIfTI file, a DICOM series folder, or a folder holding NIfTI files and DICOM series folders
    at any depth. A study's output name is its file name without .nii/.nii.gz (its folder's name for a DICOM series),
    prefixed by the sub-folders below the input folder, joined by '_'. Returns (studies, skipped): studies are
    {"image", "name", "format"} sorted by name; skipped are (path, reason) for every other file or folder.
    """
    if input_path is None or str(input_path) == "":
        raise InputDataError("setting dataset_dir (input_dir): no input folder given (use --dataset_dir IN)")
    root = Path(input_path)
    if not root.exists():
        raise InputDataError(f"setting dataset_dir (input_dir): {root} does not exist")
    if root.is_file():
        fmt = "dicom" if is_dicom_file(root) else "nifti"
        return [{"image": str(root), "name": study_name(root), "format": fmt}], []
    if _is_dicom_folder(root):
        return [{"image": str(root), "name": study_name(root), "format": "dicom"}], []
    studies: list[dict[str, Any]] = []
    skipped: list[tuple[str, str]] = []
    companions: list[tuple[Path, str, str, Path]] = []  # (folder, study file name, MR key or "sidecar", path)

    def add(entry: Path, fmt: str) -> None:
        role = mr_of(study_name(entry))
        if role is not None:
            companions.append((entry.parent, role[0], role[1], entry))
        else:
            studies.append({"image": str(entry), "name": _nested_name(root, entry), "format": fmt})

    def visit(folder: Path) -> None:
        entries = sorted(folder.iterdir())
        if not entries and folder != root:
            skipped.append((str(folder), "empty folder"))
        for entry in entries:
            if entry.name.startswith("."):
                skipped.append((str(entry), "hidden entry"))
            elif entry.is_symlink() and entry.is_dir():
                skipped.append((str(entry), "symbolic link to a folder (not followed)"))
            elif entry.is_dir() and _is_dicom_folder(entry):
                add(entry, "dicom")
                skipped.extend(
                    (str(sub), "folder inside a DICOM series folder (not searched)")
                    for sub in sorted(entry.iterdir())
                    if sub.is_dir()
                )
            elif entry.is_dir():
                visit(entry)
            elif entry.is_file() and entry.name.lower().endswith(NIFTI_SUFFIXES):
                add(entry, "nifti")
            elif entry.is_file() and entry.name.lower().endswith(".json"):
                companions.append((entry.parent, entry.name[: -len(".json")], SIDECAR, entry))
            elif entry.is_file():
                skipped.append((str(entry), "not a NIfTI file (.nii, .nii.gz) or a file of a DICOM series folder"))
            else:
                skipped.append((str(entry), "not a regular file or folder"))

    visit(root)
    _attach_mr(studies, companions, skipped)
    if not studies:
        raise InputDataError(f"setting dataset_dir (input_dir): {root} holds no NIfTI file and no DICOM series folder")
    names = [s["name"] for s in studies]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise InputDataError(
            f"setting dataset_dir (input_dir): several studies would be written as {duplicates} (e.g. x.nii and x.nii.gz)"
        )
    return sorted(studies, key=lambda s: s["name"]), skipped


def _attach_mr(
    studies: list[dict[str, Any]], companions: list[tuple[Path, str, str, Path]], skipped: list[tuple[str, str]]
) -> None:
    """Give each study the MR files (`t1`, `flair`) and the BIDS sidecar named after it in its folder; skip the
    others, with the reason."""
    by_place = {(Path(s["image"]).parent, study_name(s["image"])): s for s in studies}
    for folder, name, key, path in companions:
        study = by_place.get((folder, name))
        if key == SIDECAR:
            if study is None or study["format"] != "nifti":
                skipped.append((str(path), "a JSON file that is not the BIDS sidecar of a NIfTI study beside it"))
            else:
                study[key] = str(path)
        elif study is None:
            skipped.append(
                (str(path), f"the {key} MR of a study {name}, which is not beside it (an MR is not a study)")
            )
        elif key in study:
            skipped.append((str(path), f"a second {key} MR of study {name} (the first found is used)"))
        else:
            study[key] = str(path)


def find_studies(input_path: str | Path | None) -> list[dict[str, Any]]:
    """The studies of `scan_input`: {"image", "name", "format"} sorted by name."""
    return scan_input(input_path)[0]


class StudyFolder(Dataset):
    """The studies of an input folder as a MONAI dataset: item i is study i after `transform`.

    The folder is listed on first use (not when the config is parsed), so a workflow can be built and checked
    (`check_properties`) before its input exists. `studies` gives the raw items ({"image", "name", "format"}).
    """

    def __init__(self, dataset_dir: str | Path | None, transform: Callable | None = None) -> None:
        self.dataset_dir = dataset_dir
        self._studies: list[dict[str, Any]] | None = None
        self._skipped: list[tuple[str, str]] = []
        super().__init__(data=[], transform=transform)

    @property
    def studies(self) -> list[dict[str, Any]]:
        if self._studies is None:
            self._studies, self._skipped = scan_input(self.dataset_dir)
            self.data = self._studies
        return self._studies

    @property
    def skipped(self) -> list[tuple[str, str]]:
        """(path, reason) of every entry of the input folder that is not a study."""
        self.studies  # noqa: B018 - list the folder on first use
        return self._skipped

    def __len__(self) -> int:
        return len(self.studies)

    def __getitem__(self, index):  # type: ignore[override]
        self.studies  # noqa: B018 - list the folder on first use
        return super().__getitem__(index)
