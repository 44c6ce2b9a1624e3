"""Test settings and fixtures shared by every test: one torch thread (CI has 2 cores), seeded, tiny models.

Fixtures: ``ckpt`` — the 16² test checkpoint (a tiny StyleGAN2, w_dim 32, seed 2), for the tests where the model
does not matter; ``tiny_G`` — that checkpoint loaded.  Helpers for the CLI live in ``tests/_cli.py``.
Browser tests share one xdist group (Dash's test server port): ``make test`` runs the suite on 2 processes.
"""

import os

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

try:  # analysis tests must also run where torch is absent
    import torch

    torch.set_num_threads(1)
except ImportError:  # pragma: no cover
    torch = None


@pytest.fixture(scope="session")
def ckpt(tmp_path_factory):
    """The 16² test checkpoint on disk (a tiny StyleGAN2 saved by our own writer)."""
    from mgm_analysis.generators.checkpoints import save_checkpoint
    from mgm_analysis.generators.stylegan2 import tiny_generator

    path = tmp_path_factory.mktemp("g") / "tiny.pt"
    save_checkpoint(tiny_generator(resolution=16, w_dim=32, seed=2), path)
    return path


@pytest.fixture(scope="session")
def tiny_G(ckpt):
    """The 16² test checkpoint, loaded as a user's checkpoint is."""
    from mgm_analysis.generators import load_generator

    return load_generator(str(ckpt))


def pytest_collection_modifyitems(config, items):
    """Every browser test in one xdist group: Dash's test server listens on one port."""
    for item in items:
        if item.get_closest_marker("browser") is not None:
            item.add_marker(pytest.mark.xdist_group("browser"))
