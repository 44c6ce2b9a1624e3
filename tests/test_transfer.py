"""Transfer and combination with a tiny seeded StyleGAN2: new runs with provenance and scores."""

import numpy as np
import pytest

pytest.importorskip("torch")

from _fake_runs import discovered_run  # noqa: E402

from mgm_analysis import store  # noqa: E402
from mgm_analysis.derive import combine, derive_runs, transfer
from mgm_analysis.errors import MGMError  # noqa: E402
from mgm_analysis.generators.latents import generator_for, reference_latents
from mgm_analysis.generators.stylegan2 import tiny_generator  # noqa: E402
from mgm_analysis.metrics import inside_change  # noqa: E402


@pytest.fixture(scope="module")
def G():
    return tiny_generator(resolution=16, w_dim=32, seed=0)


# Independent of mgm_analysis.render and .metrics: the generator called directly, the scores written out.
def _render(G, ws):
    import torch

    with torch.no_grad():
        img = G.synthesis(torch.as_tensor(np.asarray(ws, np.float32)))
    return ((img.clamp(-1, 1) + 1) / 2).permute(0, 2, 3, 1).double().numpy()


def _energy_share(frames, ref, mask):
    """Σ_i Σ_p M_p Σ_c (x − x*)² / Σ_i Σ_p Σ_c (x − x*)², pixel by pixel."""
    inside = total = 0.0
    for f in frames:
        for y in range(f.shape[0]):
            for x in range(f.shape[1]):
                e = float(((f[y, x] - ref[y, x]) ** 2).sum())
                inside += mask[y, x] * e
                total += e
    return inside / total


def _rms_in(diffs, mask):
    """mean_i sqrt(Σ_p M_p mean_c d² / Σ_p M_p)."""
    return float(np.mean([np.sqrt(((d**2).mean(-1) * mask).sum() / mask.sum()) for d in diffs]))


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
        frames = _render(G, run.reference[None] + (src.latents - src.reference[None]))
        expected = _energy_share(frames, _render(G, run.reference[None])[0], src.mask)
        assert 0.05 < expected < 0.95  # a transfer that leaks some change: the score can be wrong both ways
        assert m["transfer_locality"] == pytest.approx(expected, abs=1e-4)
        assert m["source_locality"] == src.meta["metrics"]["locality"]
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
    ref = _render(G, a.reference[None])[0]
    fa, fb = _render(G, a.latents), _render(G, b.latents)  # A alone and B alone
    fab = _render(G, a.latents + b.latents - a.reference[None])
    union = np.maximum(a.mask, b.mask)
    expected = {
        "combined_locality": _energy_share(fab, ref, union),
        "a_change_in_a": _rms_in(fa - ref, a.mask), "b_change_in_b": _rms_in(fb - ref, b.mask),
        "a_change_in_b": _rms_in(fa - ref, b.mask), "b_change_in_a": _rms_in(fb - ref, a.mask),
        "interference_a": _rms_in(fab - fa, a.mask) / _rms_in(fa - ref, a.mask),
        "interference_b": _rms_in(fab - fb, b.mask) / _rms_in(fb - ref, b.mask),
    }
    for key, value in expected.items():
        assert value > 1e-3 and (key != "combined_locality" or value < 0.99), key  # not trivially 0 or 1
        assert m[key] == pytest.approx(value, rel=1e-4, abs=1e-6), key
    # A alone inside its own mask, also as measured on A's stored frames (8-bit PNGs)
    assert m["a_change_in_a"] == pytest.approx(inside_change(a.frames, a.reference_img, a.mask)["rms"], abs=3e-3)


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
