"""Transfer and combination with a tiny seeded StyleGAN2: new runs with provenance and scores."""

import numpy as np
import pytest

pytest.importorskip("torch")

from _fake_runs import discovered_run  # noqa: E402

from mgm_analysis import store  # noqa: E402
from mgm_analysis.analysis.metrics import inside_change  # noqa: E402
from mgm_analysis.analysis.transfer import (  # noqa: E402
    combine,
    derive_runs,
    generator_for,
    reference_latents,
    transfer,
)
from mgm_analysis.errors import MGMError  # noqa: E402
from mgm_analysis.generators.stylegan2 import tiny_generator  # noqa: E402


@pytest.fixture(scope="module")
def G():
    return tiny_generator(resolution=16, w_dim=32, seed=0)


def test_reference_latents_match_discover_seeds(G):
    import torch

    (w, info), (w2, _) = reference_latents(G, [3, np.zeros(G.w_dim)], 0.7)
    z = torch.randn(1, G.z_dim, generator=torch.Generator().manual_seed(3))
    expected = G.broadcast(G.mapping(z, 0.7))[0].numpy()
    assert np.allclose(w, expected) and info == {"seed": 3, "truncation": 0.7, "file": None}
    assert w2.shape == (G.num_ws, G.w_dim)
    with pytest.raises(MGMError, match="shape"):
        reference_latents(G, [np.zeros(5)])


def test_transfer_writes_ordinary_runs_with_provenance(tmp_path, G):
    src = discovered_run(tmp_path, G, "mouth", 0, 1)
    paths = transfer(src, G, [0, 5, 6])  # the run's own seed is skipped
    assert len(paths) == 2
    for p, seed in zip(paths, [5, 6], strict=True):
        run = store.load_run(p)
        prov = run.meta["provenance"]
        assert prov["kind"] == "transfer" and prov["sources"] == [src.run_id] and run.meta["seed"] == seed
        assert np.allclose(run.latents - run.reference[None], src.latents - src.reference[None], atol=1e-5)
        assert np.array_equal(run.mask, src.mask) and run.frames.shape == (5, 16, 16, 3)
        m = run.meta["metrics"]
        assert 0 <= m["transfer_locality"] <= 1 and m["transfer_locality"] == m["locality"]
        assert run.meta["config"]["layer_start"] == 1
    cat = store.catalog(tmp_path)
    assert sorted(cat.kind) == ["discover", "transfer", "transfer"] and "transfer_locality" in cat.columns


def test_transfer_refuses_another_generator(tmp_path, G):
    src = discovered_run(tmp_path, G, "mouth", 0, 1)
    with pytest.raises(MGMError, match="generator"):
        transfer(src, tiny_generator(resolution=16, w_dim=16, seed=0), [5])


def test_combine_scores_union_and_cross_region_change(tmp_path, G):
    a = discovered_run(tmp_path, G, "mouth", 0, 1, box=(2, 8, 14, 14))
    b = discovered_run(tmp_path, G, "eyes", 0, 2, box=(2, 2, 14, 7))
    run = store.load_run(combine(a, b, G))
    prov = run.meta["provenance"]
    assert prov["kind"] == "combine" and prov["sources"] == [a.run_id, b.run_id] and run.region == "mouth+eyes"
    assert np.allclose(run.latents, a.latents + b.latents - a.reference[None], atol=1e-5)
    assert np.array_equal(run.mask, np.maximum(a.mask, b.mask))
    m = run.meta["metrics"]
    for key in ["combined_locality", "a_change_in_b", "b_change_in_a", "a_change_in_a", "b_change_in_b",
                "interference_a", "interference_b"]:
        assert np.isfinite(m[key]), key
    assert m["combined_locality"] == pytest.approx(m["locality"])
    # A alone inside its own mask: the same as measured on A's stored frames (8-bit PNGs)
    assert m["a_change_in_a"] == pytest.approx(inside_change(a.frames, a.reference_img, a.mask)["rms"], abs=3e-3)
    assert m["a_change_in_a"] > 0 and m["b_change_in_b"] > 0


def test_combining_with_a_still_run_does_not_interfere(tmp_path, G):
    a = discovered_run(tmp_path, G, "mouth", 0, 1)
    still = discovered_run(tmp_path, G, "eyes", 0, 2, scale=0.0, box=(2, 10, 14, 14))
    m = store.load_run(combine(a, still, G)).meta["metrics"]
    assert m["interference_a"] == pytest.approx(0.0, abs=1e-3)
    assert m["b_change_in_a"] == pytest.approx(0.0, abs=1e-6)


def test_combine_needs_the_same_reference(tmp_path, G):
    a = discovered_run(tmp_path, G, "mouth", 0, 1)
    b = discovered_run(tmp_path, G, "eyes", 1, 2)
    with pytest.raises(MGMError, match="same reference"):
        combine(a, b, G)


def test_derive_runs_is_idempotent(tmp_path, G):
    discovered_run(tmp_path, G, "mouth", 0, 1)
    discovered_run(tmp_path, G, "eyes", 0, 2, box=(2, 10, 14, 14))
    discovered_run(tmp_path, G, "mouth", 1, 3)
    new = derive_runs(tmp_path, transfer_k=1, combine_pairs=True, G=G)
    kinds = sorted(store.load_run(p).meta["provenance"]["kind"] for p in new)
    assert kinds == ["combine", "transfer", "transfer", "transfer"]
    assert derive_runs(tmp_path, transfer_k=1, combine_pairs=True, G=G) == []
    with pytest.raises(MGMError, match="neither built in nor a checkpoint"):
        generator_for(next(store.iter_runs(tmp_path)))
