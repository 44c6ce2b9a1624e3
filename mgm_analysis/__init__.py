"""mgm_analysis: find, store, measure and browse mask-guided semantic manifolds.

Implements *Mask-Guided Discovery of Semantic Manifolds in Generative Models*
(Yang, Rokeby, Snelgrove, 2020, arXiv 2105.07273) and analysis beyond it.

Importing this package does not import torch: analysis and the dashboard read
runs with numpy and pandas only.  ``load_generator`` imports torch on first use.

In a notebook::

    import mgm_analysis as mgm
    run = mgm.discover(region="mouth", seed=3, epochs=3)   # a Run in memory; run.save("store") keeps it
    run.metrics["locality"], run.figure(), run.sheet()
    mgm.open_store("store").projection(method="pca")
"""

__version__ = "0.1.0"

__all__ = ["__version__", "load_generator", "MGMError", "discover", "baselines", "compare_methods", "load_run",
           "open_store", "Run", "Store", "register_method", "register_metric"]

from .errors import MGMError  # noqa: E402

#: public names loaded on first use (PEP 562), so that ``import mgm_analysis`` stays light (no torch, no plotly):
#: name -> the module that owns it
_LAZY = {"load_generator": ".generators", "discover": ".api", "baselines": ".api", "compare_methods": ".api",
         "load_run": ".api", "open_store": ".api", "Run": ".api", "Store": ".api",
         "register_method": ".finders.registry", "register_metric": ".metrics"}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module 'mgm_analysis' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
