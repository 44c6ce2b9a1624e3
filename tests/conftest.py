"""Test settings and fixtures shared by every test: one torch thread (CI has 2 cores), seeded, tiny models.

Fixtures: ``ckpt`` — the 16² test checkpoint (a tiny StyleGAN2, w_dim 32, seed 2), for the tests where the model
does not matter; ``tiny_G`` — that checkpoint loaded; ``sigint_raises`` — Ctrl-C raises in this process.  Helpers for the CLI live in ``tests/_cli.py``.
``make test`` runs the suite on 2 processes (pytest-xdist, work stealing); each process serves Dash's test apps on
its own ports, and the long tests are handed out first.
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


@pytest.fixture(autouse=True)
def _torch_threads_kept():
    """Every test leaves torch on the one thread it found: a test process that two threads' worth of spinning
    OpenMP shares 2 cores with another ran torch ~30 times slower (a library call that changes the count must put
    it back; see ``generators.base.torch_threads``)."""
    yield
    if torch is not None and torch.get_num_threads() != 1:
        n = torch.get_num_threads()
        torch.set_num_threads(1)
        pytest.fail(f"the test left torch with {n} threads (it had 1)")


@pytest.fixture
def sigint_raises():
    """Ctrl-C raises KeyboardInterrupt in this process during the test, as in a terminal (a test process started
    from a background job inherits SIGINT as ignored)."""
    import signal

    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, before)


def pytest_configure(config):
    """Each xdist process starts Dash's test servers on its own ports (Dash numbers them from 58050 in every
    process), so browser tests run on both processes at once.

    The test servers' request log (werkzeug, INFO) is off: dash[testing] stops a server thread by raising
    SystemExit in it asynchronously, and one that arrived while that thread held the logging handler's lock left
    the lock taken: the next log call of the process (Dash's own "server failed to start") waited forever."""
    import logging

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if worker.startswith("gw"):
        try:
            from dash.testing.application_runners import BaseDashRunner
        except ImportError:  # pragma: no cover  (dash[testing] absent: the browser tests are skipped)
            return
        BaseDashRunner._next_port = 58050 + 500 * int(worker[2:])


def pytest_collection_modifyitems(config, items):
    """The long tests first (marked slow or browser), the rest after them: a process that
    finishes its long tests takes short ones from the queue instead of leaving one long test for last."""
    def weight(item):
        long = item.get_closest_marker("slow") is not None or item.get_closest_marker("browser") is not None
        return 0 if long else 1

    items.sort(key=weight)  # a stable sort: the order within each part is kept
