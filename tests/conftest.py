"""Test settings shared by every test: one torch thread (CI has 2 cores), seeded, tiny models."""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

try:  # analysis tests must also run where torch is absent
    import torch

    torch.set_num_threads(1)
except ImportError:  # pragma: no cover
    torch = None
