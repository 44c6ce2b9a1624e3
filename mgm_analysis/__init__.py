"""mgm_analysis: find, store, measure and browse mask-guided semantic manifolds.

Implements *Mask-Guided Discovery of Semantic Manifolds in Generative Models*
(Yang, Rokeby, Snelgrove, 2020, arXiv 2105.07273) and analysis beyond it.

Importing this package does not import torch: analysis and the dashboard read
runs with numpy and pandas only.  ``load_generator`` imports torch on first use.
"""

__version__ = "0.1.0"

__all__ = ["__version__", "load_generator", "MGMError"]

from .errors import MGMError  # noqa: E402


def __getattr__(name):
    if name == "load_generator":
        from .generators import load_generator

        return load_generator
    raise AttributeError(f"module 'mgm_analysis' has no attribute {name!r}")
