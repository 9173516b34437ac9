"""Simulation geometry presets and the validated simulation settings."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from ..errors import ConfigValueError

__all__ = [
    "ANATOMIES",
    "COUNT_SAMPLERS",
    "RESOLUTION_SPACES",
    "SCANNERS",
    "STORAGE_GRIDS",
    "DOSE_CHAIN",
    "Geometry",
    "LESION_RECIPES",
    "PRESETS",
    "ReconstructionSettings",
    "SimulationConfig",
]

LESION_RECIPES = ("gbm", "mix", "rich")
COUNT_SAMPLERS = ("legacy", "inverse_cdf")
ANATOMIES = ("mild", "varied")
SCANNERS = ("fixed", "randomised")
RESOLUTION_SPACES = ("image", "sinogram")
STORAGE_GRIDS = ("preset", "native")
PHYSICS_SPREADS = ("narrow", "broad")
MIN_COUNTS, MAX_COUNTS = 1e5, 1e13
"""Expected prompts per subject that an image can be made from, and that Poisson sampling handles in float32."""
DOSE_CHAIN = (2.0, 4.0, 10.0, 20.0, 50.0, 100.0, 200.0)
"""The nested dose levels of a full study (UDPET's 2-100 and the paper's 200)."""


@dataclass(frozen=True)
class Geometry:
    """Image grid and sinogram sampling of one preset.

    `counts_full_dose` is the calibrated expected number of prompts (trues + scatter + randoms) per subject
    at full dose. It is an *effective* 2D count level: a 2D non-TOF acquisition needs more counts than a 3D
    TOF scanner records to reach the same image noise (see docs/simulation.md).
    """

    name: str
    shape: tuple[int, int, int]
    voxel_size_mm: tuple[float, float, float]
    n_views: int
    counts_full_dose: float
    axial_offset_mm: float = 6.0  # grid centre above the brain's bounding-box centre, so the vertex is inside


PRESETS: dict[str, Geometry] = {
    # 128 x 128 at 2 mm, 80 slices of 2 mm: covers the brain from the vertex down to the lower cerebellum.
    "quick": Geometry("quick", (128, 128, 80), (2.0, 2.0, 2.0), n_views=168, counts_full_dose=2.4e9),
    # the paper's 256 x 256 x 89 matrix: 300 mm field of view (1.17 mm pixels) and 2 mm slices.
    "paper": Geometry("paper", (256, 256, 89), (300.0 / 256, 300.0 / 256, 2.0), n_views=252, counts_full_dose=2.5e9),
    # a coarse grid for tests and smoke runs: 64 x 64 x 40 at 4 mm.
    "tiny": Geometry("tiny", (64, 64, 40), (4.0, 4.0, 4.0), n_views=84, counts_full_dose=2.3e9),
}


@dataclass(frozen=True)
class ReconstructionSettings:
    """OSEM settings shared by every dose level."""

    iterations: int = 2
    subsets: int = 28
    model_psf: bool = True  # resolution modelling inside OSEM (see docs/simulation.md for why it is the default)
    postfilter_fwhm_mm: float = 0.0  # in-plane and axial Gaussian post-filter; 0 = none


def _positive_number(name: str, value: Any, allow_zero: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(float(value)):
        raise ConfigValueError(f"setting {name}: expected a number, got {value!r}")
    if float(value) < 0 or (float(value) == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ConfigValueError(f"setting {name}: must be {bound}, got {value!r}")
    return float(value)


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigValueError(f"setting {name}: expected a positive integer, got {value!r}")
    return int(value)


@dataclass(frozen=True)
class SimulationConfig:
    """Every setting of a simulated dataset; validated on construction.

    Attributes:
        preset: 'quick' (128 x 128 x 80 at 2 mm), 'paper' (256 x 256 x 89) or 'tiny' (64 x 64 x 40, tests).
        slices: simulate only this many axial slices through the brain centre (None: the preset's).
        n_subjects: number of subjects.
        drfs: dose-reduction factors of the low-dose images (each > 1); the first is the default input.
        seed: seed of every random draw; subject k uses the stream (seed, k).
        counts_full_dose: expected full-dose prompts per subject (None: the preset's calibrated value).
        count_spread: subjects' count levels vary log-uniformly within x(1 -/+ spread) (injected dose, weight).
        detector_fwhm_mm: in-plane resolution of the data model.
        axial_fwhm_mm: axial resolution of the data model.
        scatter_fraction: scatter / prompts.
        randoms_fraction: randoms / prompts.
        recon: OSEM settings.
        device: 'auto', 'cpu' or 'cuda'.
        lesions: 'gbm' (the legacy recipe: one glioblastoma-like lesion per subject, drawn with the anatomy) or 'mix'
            (1-4 lesions per subject of distinct kinds: hot nodule, ring-enhancing, PET-only, cold; own stream) or
            'rich' (the lesion-rich training recipe, `lesions.RichLesionRecipe`: 4-8 hot lesions of 5-20 mm at
            1.5-4x grey matter, PET-only foci among them, and 0-1 cold region; own stream).
        count_sampler: 'legacy' (numpy's Poisson sampler: the default dataset's, whose noise depends on the CPU kind
            and thread count) or 'inverse_cdf' (one uniform per bin: the same counts on any CPU and thread count).
        anatomy: 'mild' (the template under small warps: the default dataset) or 'varied' (adds a gyral-scale
            deformation, head size and shape, and atrophy; `phantom.varied_tissue_model`, own stream).
        scanner: 'fixed' (every subject on the preset's grid with the settings above and a reconstruction that knows
            the data model exactly) or 'randomised' (per subject: voxel size, detector resolution, post-filter, a PSF
            and a scatter/randoms estimate that are off; `scanner_draw`, own stream; resampled onto the preset grid).
        resolution_space: where the detector resolution is modelled, in the data and in OSEM: 'image' (a blur of
            the activity, the default dataset's) or 'sinogram' (of the line integrals, as a detector response is;
            several times faster on fine grids).
        physics_spread: 'narrow' (the randomised scanner's draw alone) or 'broad' (a randomised scanner whose
            subjects also draw a detector response with a wide tail, OSEM with or without resolution modelling, its
            iterations and subsets, and the scatter and randoms fractions; `scanner_draw.draw_physics`, own stream).
        grid: where a randomised scanner's volumes are stored: 'preset' (resampled onto the preset's 2 mm grid, as
            for training) or 'native' (on the subject's own drawn grid, as a site's study arrives: a test set off
            the training grid).
    """

    preset: str = "quick"
    slices: int | None = None
    n_subjects: int = 9
    drfs: tuple[float, ...] = (200.0,)
    seed: int = 0
    counts_full_dose: float | None = None
    count_spread: float = 0.12
    detector_fwhm_mm: float = 4.5
    axial_fwhm_mm: float = 4.5
    scatter_fraction: float = 0.35
    randoms_fraction: float = 0.15
    recon: ReconstructionSettings = field(default_factory=ReconstructionSettings)
    device: str = "auto"
    lesions: str = "gbm"
    count_sampler: str = "legacy"
    anatomy: str = "mild"
    scanner: str = "fixed"
    resolution_space: str = "image"
    grid: str = "preset"
    physics_spread: str = "narrow"

    def __post_init__(self) -> None:
        if self.preset not in PRESETS:
            raise ConfigValueError(f"setting preset: unknown preset {self.preset!r}; choose one of {sorted(PRESETS)}")
        _positive_int("n_subjects", self.n_subjects)
        if self.slices is not None:
            _positive_int("slices", self.slices)
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ConfigValueError(f"setting seed: expected a non-negative integer, got {self.seed!r}")
        drfs = tuple(self.drfs) if isinstance(self.drfs, (list, tuple)) else (self.drfs,)
        if not drfs:
            raise ConfigValueError("setting drf: at least one dose-reduction factor is needed")
        for drf in drfs:
            value = _positive_number("drf", drf)
            if value <= 1.0:
                raise ConfigValueError(f"setting drf: dose-reduction factors must be > 1, got {drf!r}")
        if len(set(drfs)) != len(drfs):
            raise ConfigValueError(f"setting drf: repeated dose-reduction factors {list(drfs)}")
        object.__setattr__(self, "drfs", tuple(float(d) for d in drfs))
        if self.counts_full_dose is not None:
            counts = _positive_number("counts", self.counts_full_dose)
            if not MIN_COUNTS <= counts <= MAX_COUNTS:
                raise ConfigValueError(
                    f"setting counts: {counts:.3g} full-dose prompts per subject is outside {MIN_COUNTS:.0e}-"
                    f"{MAX_COUNTS:.0e} (clinical brain studies record about 1e8-1e9)"
                )
        for drf in self.drfs:
            if self.full_dose_counts / drf < MIN_COUNTS:
                raise ConfigValueError(
                    f"setting drf: {drf:g} leaves {self.full_dose_counts / drf:.3g} expected prompts of the full dose's "
                    f"{self.full_dose_counts:.3g}, too few for an image; at most DRF "
                    f"{self.full_dose_counts / MIN_COUNTS:.3g} keeps {MIN_COUNTS:.0e}"
                )
        spread = _positive_number("count_spread", self.count_spread, allow_zero=True)
        if spread >= 1:
            raise ConfigValueError(f"setting count_spread: must be in [0, 1), got {spread}")
        _positive_number("detector_fwhm_mm", self.detector_fwhm_mm, allow_zero=True)
        _positive_number("axial_fwhm_mm", self.axial_fwhm_mm, allow_zero=True)
        sf = _positive_number("scatter_fraction", self.scatter_fraction, allow_zero=True)
        rf = _positive_number("randoms_fraction", self.randoms_fraction, allow_zero=True)
        if sf + rf >= 1:
            raise ConfigValueError(f"settings scatter_fraction + randoms_fraction: must be < 1, got {sf + rf}")
        _positive_int("osem_iterations", self.recon.iterations)
        _positive_int("osem_subsets", self.recon.subsets)
        if self.geometry.n_views % self.recon.subsets:
            raise ConfigValueError(
                f"setting osem_subsets: {self.recon.subsets} does not divide the preset's {self.geometry.n_views} views"
            )
        _positive_number("postfilter_fwhm_mm", self.recon.postfilter_fwhm_mm, allow_zero=True)
        if self.lesions not in LESION_RECIPES:
            raise ConfigValueError(f"setting lesions: expected one of {list(LESION_RECIPES)}, got {self.lesions!r}")
        if self.count_sampler not in COUNT_SAMPLERS:
            raise ConfigValueError(
                f"setting count_sampler: expected one of {list(COUNT_SAMPLERS)}, got {self.count_sampler!r}"
            )
        if self.anatomy not in ANATOMIES:
            raise ConfigValueError(f"setting anatomy: expected one of {list(ANATOMIES)}, got {self.anatomy!r}")
        if self.scanner not in SCANNERS:
            raise ConfigValueError(f"setting scanner: expected one of {list(SCANNERS)}, got {self.scanner!r}")
        if self.resolution_space not in RESOLUTION_SPACES:
            raise ConfigValueError(
                f"setting resolution_space: expected one of {list(RESOLUTION_SPACES)}, got {self.resolution_space!r}"
            )
        if self.grid not in STORAGE_GRIDS:
            raise ConfigValueError(f"setting grid: expected one of {list(STORAGE_GRIDS)}, got {self.grid!r}")
        if self.grid == "native" and self.scanner != "randomised":
            raise ConfigValueError(
                "setting grid: 'native' needs a randomised scanner (a fixed one is on the preset grid)"
            )
        if self.physics_spread not in PHYSICS_SPREADS:
            raise ConfigValueError(
                f"setting physics_spread: expected one of {list(PHYSICS_SPREADS)}, got {self.physics_spread!r}"
            )
        if self.physics_spread == "broad" and self.scanner != "randomised":
            raise ConfigValueError("setting physics_spread: 'broad' needs a randomised scanner")
        if self.scanner == "randomised" and self.slices is not None:
            raise ConfigValueError("setting slices: a randomised scanner simulates whole volumes; leave slices unset")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ConfigValueError(f"setting device: expected auto, cpu or cuda, got {self.device!r}")

    @property
    def geometry(self) -> Geometry:
        """The preset's full grid (subjects are always built on it, then cropped to the slab if any)."""
        return PRESETS[self.preset]

    def slab(self) -> slice:
        """Axial slices kept: all, or `slices` slices centred on the grid."""
        nz = self.geometry.shape[2]
        if self.slices is None or self.slices >= nz:
            return slice(0, nz)
        start = (nz - self.slices) // 2
        return slice(start, start + self.slices)

    @property
    def full_dose_counts(self) -> float:
        return float(self.counts_full_dose or self.geometry.counts_full_dose)

    def with_updates(self, **changes: Any) -> "SimulationConfig":
        """A copy with some settings changed (validated again)."""
        return replace(self, **changes)

    def as_dict(self) -> dict[str, Any]:
        """Every setting, with the preset's geometry spelled out, for the manifest."""
        out = asdict(self)
        out["geometry"] = asdict(self.geometry)
        out["counts_full_dose"] = self.full_dose_counts
        return out

    def data_settings(self) -> dict[str, Any]:
        """The settings that determine the images of a subject (everything but the subject count and device)."""
        out = self.as_dict()
        for key in ("n_subjects", "device"):
            out.pop(key)
        if out["lesions"] == "gbm":
            out.pop("lesions")  # the legacy recipe keeps the settings hash it had before the lesion mix existed
        for key, default in (
            ("count_sampler", "legacy"),
            ("anatomy", "mild"),
            ("scanner", "fixed"),
            ("resolution_space", "image"),
            ("grid", "preset"),
            ("physics_spread", "narrow"),
        ):
            if out[key] == default:
                out.pop(key)  # likewise for settings added later, at their default
        return out

    @staticmethod
    def field_names() -> list[str]:
        return [f.name for f in fields(SimulationConfig)]
