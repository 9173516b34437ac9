"""Classical baselines (Gaussian post-filter, NLM, BM3D) and their per-fold tuning on training subjects."""

from .gaussian import GaussianFilter
from .nlm import NonLocalMeans
from .tuning import TunedBaseline, load_cases, score_grid, select_parameters

__all__ = ["GaussianFilter", "NonLocalMeans", "TunedBaseline", "load_cases", "score_grid", "select_parameters", "available_methods"]


def available_methods() -> dict:
    """Baselines that can run here: BM3D only when its (non-commercial) package is installed."""
    methods = {"gaussian": GaussianFilter, "nlm": NonLocalMeans}
    try:
        from .bm3d_filter import BM3DFilter

        methods["bm3d"] = BM3DFilter
    except ImportError:
        pass
    return methods
