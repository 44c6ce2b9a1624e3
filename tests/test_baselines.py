"""Known-answer tests of the baseline direction finders (GANSpace, SeFa, InterFaceGAN, masked Jacobian), equal
strength, the baseline runs in the store, and the command's bad-input lines."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from click.testing import CliRunner

from mgm_analysis.directions import JacobianOperator, masked_jacobian
from mgm_analysis.errors import MGMError
from mgm_analysis.finders import common
from mgm_analysis.finders.ganspace import ganspace_components, pca_components
from mgm_analysis.finders.interfacegan import conditional_normal, fit_boundaries, labels_from_csv
from mgm_analysis.finders.sefa import sefa_components, style_affines
from mgm_analysis.generators.base import GeneratorInfo
from mgm_analysis.generators.stylegan2 import tiny_generator
from mgm_analysis.generators.toyfaces.renderer import FACTORS
from mgm_analysis.losses import make_distance


# ------------------------------------------------------------------ a linear "generator" with planted structure
class LinearGenerator(torch.nn.Module):
    """img = base + reshape(J · free layers), w = mu + z·L: every answer is known in closed form.

    Inside the mask (rows 0..2) the image depends only on a planted subspace S of the free layers; outside, only
    on S's orthogonal complement.
    """

    def __init__(self, w_dim=12, num_ws=4, layers=(1, 3), res=8, s_dim=2, seed=0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.w_dim, self.num_ws, self.resolution, self.z_dim = w_dim, num_ws, res, w_dim
        self.layers = layers
        n = (layers[1] - layers[0]) * w_dim
        q, _ = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=torch.float64))
        self.S, self.C = q[:, :s_dim], q[:, s_dim:]                       # planted subspace and its complement
        self.mask = torch.zeros(res, res)
        self.mask[:3] = 1
        m_in = self.mask.bool().expand(3, res, res).reshape(-1)
        n_pix = 3 * res * res
        J = torch.zeros(n_pix, n, dtype=torch.float64)
        J[m_in] = torch.randn(int(m_in.sum()), s_dim, generator=g, dtype=torch.float64) @ self.S.T
        decay = torch.logspace(0, -2, n - s_dim, dtype=torch.float64)      # outside: a decaying spectrum
        J[~m_in] = (torch.randn(int((~m_in).sum()), n - s_dim, generator=g, dtype=torch.float64) * decay) @ self.C.T
        self.J = J * 0.05
        self.base = torch.randn(3, res, res, generator=g) * 0.2
        lam = torch.tensor([9.0, 4.0, 1.0] + [0.04] * (w_dim - 3), dtype=torch.float64)
        self.V, _ = torch.linalg.qr(torch.randn(w_dim, w_dim, generator=g, dtype=torch.float64))
        self.lam = lam
        self.L = (self.V * lam.sqrt()).T                                    # z @ L has covariance V diag(lam) Vᵀ
        self.register_buffer("w_avg", torch.zeros(w_dim))
        self.info = GeneratorInfo(name="linear", format="builtin", path=None, sha256=None, resolution=res,
                                  num_ws=num_ws, w_dim=w_dim, num_params=0)

    def mapping(self, z, truncation=1.0):
        return (z.double() @ self.L).float() + 0.5

    def broadcast(self, w):
        return w[:, None].expand(-1, self.num_ws, -1)

    def synthesis(self, ws):
        ls, le = self.layers
        x = ws[:, ls:le].reshape(len(ws), -1)
        return self.base + (x @ self.J.T.to(x.dtype)).reshape(len(ws), 3, self.resolution, self.resolution)


@pytest.fixture(scope="module")
def lin():
    return LinearGenerator()


def _cos_to_span(d, basis):
    d = np.asarray(d, np.float64).ravel()
    return float(np.linalg.norm(basis.T @ d) / np.linalg.norm(d))


# ------------------------------------------------------------------ jacobian
def test_jacobian_products_match_the_dense_jacobian(lin):
    w_ref = torch.randn(lin.num_ws, lin.w_dim, generator=torch.Generator().manual_seed(1))
    op = JacobianOperator(lin, w_ref, lin.mask, lin.layers)
    V = np.random.default_rng(0).standard_normal((3, op.shape[0] * op.shape[1]))
    got = op.apply(V)
    m = lin.mask.expand(3, -1, -1).reshape(-1).double().numpy()
    J = lin.J.numpy()
    A = J.T @ (J * (m / (3 * lin.mask.sum().item()))[:, None])        # written out, from the planted matrix
    B = J.T @ (J * ((1 - m) / (3 * (1 - lin.mask).sum().item()))[:, None])
    np.testing.assert_allclose(got["A"], V @ A, rtol=1e-4, atol=1e-9)
    np.testing.assert_allclose(got["B"], V @ B, rtol=1e-4, atol=1e-9)


def test_jacobian_recovers_the_planted_subspace(lin):
    w_ref = torch.zeros(lin.num_ws, lin.w_dim)
    res = masked_jacobian(lin, w_ref, lin.mask, lin.layers, k=4, rank=8, oversample=4, power=2)  # rank 8 < 22
    S = lin.S.numpy()
    assert res["directions"].shape == (4, 2, lin.w_dim)
    for d in res["directions"][:2]:                 # the planted S is 2-dimensional: both top directions lie in it
        assert _cos_to_span(d, S) >= 0.99
    assert _cos_to_span(res["directions"][2], S) < 0.9
    assert res["ratios"][0] >= res["ratios"][1] >= res["ratios"][2]


def test_forward_mode_through_stylegan2_matches_finite_differences():
    G = tiny_generator(resolution=16, w_dim=16, seed=0).double()
    w = G.broadcast(G.mapping(torch.randn(1, G.z_dim, generator=torch.Generator().manual_seed(2),
                                          dtype=torch.float64)))[0]
    op = JacobianOperator(G, w, np.ones((16, 16)) * 0.5, (1, 4))
    op.w_ref = w                                           # keep float64 for the comparison
    V = torch.randn(2, 3, 16, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    T = op.jvp(V)
    h = 1e-6
    fd = []
    for v in V:
        wp, wm = w.clone(), w.clone()
        wp[1:4] += h * v
        wm[1:4] -= h * v
        fd.append((G.synthesis(wp[None]) - G.synthesis(wm[None]))[0] / (2 * h))
    torch.testing.assert_close(T, torch.stack(fd), rtol=1e-5, atol=1e-7)


# ------------------------------------------------------------------ sefa
def test_sefa_finds_the_planted_affine_directions():
    G = tiny_generator(resolution=16, w_dim=32, seed=0)
    rng = np.random.default_rng(0)
    u1, u2 = np.linalg.qr(rng.standard_normal((32, 2)))[0].T
    for name, _, _ in style_affines(G, (2, 5)):
        lin = G.get_submodule(name).conv.modulation
        out = lin.weight.shape[0]
        a, b = rng.standard_normal(out), rng.standard_normal(out)
        planted = 5 * np.outer(a, u1) + 3 * np.outer(b, u2) + 1e-3 * rng.standard_normal((out, 32))
        with torch.no_grad():
            lin.weight.copy_(torch.as_tensor(planted / lin.scale, dtype=torch.float32))
    comps = sefa_components(G, (2, 5), k=3)["components"]
    assert abs(comps[0] @ u1) >= 0.99
    assert abs(comps[1] @ u2) >= 0.99


def test_style_affines_are_the_layers_that_read_each_w_plus_layer():
    G = tiny_generator(resolution=16, w_dim=16, seed=1)
    ws = G.broadcast(G.mapping(torch.randn(1, G.z_dim, generator=torch.Generator().manual_seed(0))))
    for layer in range(G.num_ws):
        t0, t1 = {}, {}
        G.synthesis(ws, trace=t0)
        ws2 = ws.clone()
        ws2[:, layer] += 1.0
        G.synthesis(ws2, trace=t1)
        moved = {k.split(".", 1)[1] for k in t0 if k.startswith("dbg_style.") and not torch.equal(t0[k], t1[k])}
        assert moved == {n for n, _, _ in style_affines(G, (layer, layer + 1))}


# ------------------------------------------------------------------ ganspace
def test_ganspace_recovers_the_planted_w_covariance(lin, tmp_path):
    res = ganspace_components(lin, k=3, cache_dir=tmp_path)
    V = lin.V.numpy()
    for i in range(3):
        assert abs(res["components"][i] @ V[:, i]) >= 0.99
    np.testing.assert_allclose(res["variance"], [9.0, 4.0, 1.0], rtol=0.05)
    again = ganspace_components(lin, k=3, cache_dir=tmp_path)
    assert again["cached"] and not res["cached"]
    np.testing.assert_array_equal(again["components"], res["components"])
    with pytest.raises(MGMError):
        ganspace_components(lin, n_samples=500)


def test_pca_components_against_a_covariance_written_out():
    x = np.random.default_rng(1).standard_normal((400, 5)) @ np.diag([3, 2, 1, 0.5, 0.1])
    comps, lam, mu = pca_components(x, 2)
    c = np.zeros((5, 5))
    for row in x - x.mean(0):
        c += np.outer(row, row)
    c /= len(x)
    for v, l_ in zip(comps, lam, strict=True):
        np.testing.assert_allclose(c @ v, l_ * v, atol=1e-9)


# ------------------------------------------------------------------ interfacegan
def test_interfacegan_recovers_a_planted_boundary():
    rng = np.random.default_rng(0)
    w = rng.standard_normal((6000, 16)) * np.logspace(-1, 0.5, 16) + 3.0  # anisotropic (0.1 to 3.2), off-centre
    n_true = rng.standard_normal(16)
    n_true /= np.linalg.norm(n_true)
    cont = w @ n_true + 0.05 * rng.standard_normal(len(w))
    binary = (w @ n_true > np.median(w @ n_true)).astype(float)
    fit = fit_boundaries(w, np.stack([cont, binary], 1))
    assert fit["normals"][0] @ n_true >= 0.98
    assert fit["normals"][1] @ n_true >= 0.98
    assert (fit["accuracy"] >= 0.95).all()


def test_conditional_normal_projects_out_the_others_by_gram_schmidt():
    rng = np.random.default_rng(2)
    normals = rng.standard_normal((3, 8))
    got = conditional_normal(normals, 0, [1, 2])
    q1 = normals[1] / np.linalg.norm(normals[1])                      # Gram–Schmidt by hand
    q2 = normals[2] - (normals[2] @ q1) * q1
    q2 /= np.linalg.norm(q2)
    want = normals[0] - (normals[0] @ q1) * q1 - (normals[0] @ q2) * q2
    np.testing.assert_allclose(got, want / np.linalg.norm(want), atol=1e-10)


def test_labels_csv_missing_columns_is_one_line(lin, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("id,smile\n" + "".join(f"{i},{i % 2}\n" for i in range(30)))
    with pytest.raises(MGMError, match="missing column 'seed' or 'w'"):
        labels_from_csv(bad, lin)
    only = tmp_path / "only.csv"
    only.write_text("seed\n" + "".join(f"{i}\n" for i in range(30)))
    with pytest.raises(MGMError, match="no attribute columns"):
        labels_from_csv(only, lin)
    ok = tmp_path / "ok.csv"
    ok.write_text("seed,smile\n" + "".join(f"{i},{i % 2}\n" for i in range(30)))
    with pytest.raises(MGMError, match="missing attribute column"):
        labels_from_csv(ok, lin, attributes=["age"])
    w, y, names = labels_from_csv(ok, lin)
    assert w.shape == (30, lin.w_dim) and names == ["smile"] and y.shape == (30, 1)


# ------------------------------------------------------------------ equal strength
def test_equal_strength_hits_c_against_the_closed_form():
    lin = LinearGenerator()
    with torch.no_grad():
        lin.base.zero_()                                   # every frame inside [-1, 1]: the clamp plays no part
    w_ref = torch.zeros(lin.num_ws, lin.w_dim)
    dist = make_distance(lin.mask, "l2", "map")
    S = lin.S.numpy()
    d = common.unit_directions(np.stack([(S @ [1.0, 0.3]).reshape(2, -1), (S @ [-0.2, 1.0]).reshape(2, -1)]))
    t, c = np.linspace(-1, 1, 7), 0.02
    st = common.equal_strength(lin, w_ref, d, c, t, lin.layers, dist, tol=1e-5)
    m = lin.mask.expand(3, -1, -1).reshape(-1).double().numpy()
    J = lin.J.numpy()
    for k in range(2):
        q = float(((J @ d[k].ravel()) ** 2 * m).sum() / (3 * lin.mask.sum().item()))  # D_in per unit², by hand
        s_star = np.sqrt(c / (q * np.mean(t**2)))
        assert st.reached[k]
        assert st.scales[k] == pytest.approx(s_star, rel=1e-4)
        assert st.d_in[k] == pytest.approx(c, rel=1e-5)


def test_equal_strength_is_met_by_the_frames_as_saved_clamped_to_the_display_range():
    """A generator whose region sits near white: half of every edit leaves [-1, 1] and never shows in a saved
    frame, so the scale that meets c on the clamped images is larger than the unclamped closed form's."""
    g = LinearGenerator(seed=3)
    with torch.no_grad():
        g.base[:, :3] = 0.9                                           # the region's pixels, 0.1 below white
    w_ref = torch.zeros(g.num_ws, g.w_dim)
    dist = make_distance(g.mask, "l2", "map")
    d = common.unit_directions(g.S.numpy()[:, :1].T.reshape(1, 2, -1))
    t, c = np.linspace(-1, 1, 9), 0.05
    st = common.equal_strength(g, w_ref, d, c, t, g.layers, dist, tol=1e-5)
    assert st.reached[0]
    m = g.mask.expand(3, -1, -1).numpy().astype(bool)
    J, base = g.J.numpy(), g.base.numpy().astype(np.float64)

    def mean_d_in(scale, clamp):                                      # written out with numpy, frame by frame
        out = []
        for ti in t:
            img = base + (J @ (scale * ti * d[0].ravel())).reshape(base.shape)
            ref = base
            if clamp:
                img, ref = np.clip(img, -1, 1), np.clip(ref, -1, 1)
            out.append(((img - ref) ** 2)[m].mean())
        return float(np.mean(out))

    assert mean_d_in(st.scales[0], clamp=True) == pytest.approx(c, rel=1e-4)
    assert mean_d_in(st.scales[0], clamp=False) > 1.3 * c             # unclamped, that path overshoots c
    q = float(((J @ d[0].ravel()) ** 2 * m.reshape(-1)).sum() / m.sum())
    assert st.scales[0] > 1.1 * np.sqrt(c / (q * np.mean(t**2)))      # the unclamped closed form falls short


def test_a_direction_that_never_touches_the_region_is_not_reached(lin):
    w_ref = torch.zeros(lin.num_ws, lin.w_dim)
    dist = make_distance(lin.mask, "l2", "map")
    outside_only = common.unit_directions(lin.C.numpy()[:, :1].T.reshape(1, 2, -1))
    st = common.equal_strength(lin, w_ref, outside_only, 0.02, common.path_t(5), lin.layers, dist, max_scale=50)
    assert not st.reached[0]


# ------------------------------------------------------------------ runs in the store
@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory):
    from mgm_analysis.generators import load_generator
    from mgm_analysis.generators.checkpoints import save_checkpoint

    path = tmp_path_factory.mktemp("g") / "tiny16.pt"
    save_checkpoint(tiny_generator(resolution=16, w_dim=16, seed=0), path)
    return path, load_generator(path)


CFG = {"distance": "l2", "n_frames": 6, "offset": 0.004, "layer_start": 1, "layer_end": 4}


@pytest.mark.parametrize("method", ["sefa", "jacobian"])
def test_baseline_runs_are_ordinary_runs_at_equal_strength(tiny_ckpt, tmp_path, method):
    from mgm_analysis import store
    from mgm_analysis.method_runs import run_baseline

    _, G = tiny_ckpt
    path = run_baseline(G, method, "rect:3,3,11,9", seed=0, out=tmp_path / "runs", config=CFG)
    run = store.load_run(path)
    prov = run.meta["provenance"]
    assert prov["kind"] == "baseline" and prov["method"] == method
    assert prov["component"] == prov["params"]["candidates"][prov["params"]["component_index"]]["component"]
    cat = store.catalog(tmp_path / "runs")
    assert list(cat.kind) == ["baseline"]
    free = run.latents[:, 1:4] - run.reference[None, 1:4]          # a straight line through w*, both ways
    sv = np.linalg.svd(free.reshape(len(free), -1), compute_uv=False)
    assert sv[1] <= 1e-4 * sv[0]
    assert np.abs(free.mean(0)).max() <= 1e-5 * np.abs(free).max()
    np.testing.assert_allclose(free[0], -free[-1], atol=1e-6)
    assert np.array_equal(run.latents[:, [0, 4, 5]], np.repeat(run.reference[None, [0, 4, 5]], len(free), 0))
    d_in = []                                   # equal strength on the frames as saved, measured by a loop here
    mask = torch.as_tensor(run.mask)
    with torch.no_grad():
        ref = G.synthesis(torch.as_tensor(run.reference)[None]).clamp(-1, 1)
        for w in run.latents:
            diff = (G.synthesis(torch.as_tensor(w)[None]).clamp(-1, 1) - ref).square().mean(1)[0]
            d_in.append(float((diff * mask).sum() / mask.sum()))
    assert np.mean(d_in) == pytest.approx(CFG["offset"], rel=2e-3)
    frames = run.frames * 2 - 1                                   # and on the saved PNGs, to their 8 bits
    saved = [float((((f - (run.reference_img * 2 - 1)) ** 2).mean(-1) * run.mask).sum() / run.mask.sum())
             for f in frames]
    assert np.mean(saved) == pytest.approx(CFG["offset"], rel=0.02)


def test_analyze_reads_a_store_with_baselines(tiny_ckpt, tmp_path):
    from mgm_analysis.analysis.report import analyze
    from mgm_analysis.jobs import JobSpec, run_job
    from mgm_analysis.method_runs import run_baseline

    ckpt, G = tiny_ckpt
    out = tmp_path / "runs"
    run_job(JobSpec(kind="discover", generator=str(ckpt), region="rect:3,3,11,9", seed=0,
                    config={**CFG, "epochs": 2}), out, G=G)
    run_baseline(G, "sefa", "rect:3,3,11,9", seed=0, out=out, config=CFG)
    paths = analyze(out, tmp_path / "report", quiet=True)
    text = paths["report"].read_text()
    assert paths["report"].exists() and "Methods at equal strength" in text
    assert "Methods: locality against strength" in text and "Equal extent" in text
    saved = pd.read_csv(paths["methods"])
    assert sorted(saved.method) == ["discovery", "sefa"]
    assert list(saved.columns[:4]) == ["method", "region", "strength", "runs"] and (saved.strength == 1).all()
    assert {"spread", "inside_path"} <= set(saved.columns)
    deltas, positions = pd.read_csv(paths["projection_pca"]), pd.read_csv(paths["projection_pca_positions"])
    assert len(deltas) == len(positions) == 2 * CFG["n_frames"] - CFG["n_frames"]  # the discovered run only
    from mgm_analysis.analysis.table import method_table
    from mgm_analysis.store import catalog

    cat = catalog(out)
    assert sorted(cat.method) == ["discovery", "sefa"]              # the dashboard's table filters on it
    table = method_table(cat)
    assert sorted(table.method) == ["discovery", "sefa"]
    assert (table.runs == 1).all()


# ------------------------------------------------------------------ the command's bad input
def test_cli_bad_input_is_one_line_exit_2(tiny_ckpt, tmp_path):
    from mgm_analysis.cli import main

    ckpt, _ = tiny_ckpt
    r = CliRunner()
    res = r.invoke(main, ["baselines", "--methods", "pca", "--generator", str(ckpt), "--out", str(tmp_path / "a")])
    assert res.exit_code == 2 and "unknown method(s) pca" in res.output and len(res.output.strip().splitlines()) == 1
    res = r.invoke(main, ["baselines", "--methods", "interfacegan", "--generator", str(ckpt), "--region",
                          "rect:3,3,11,9", "--layers", "1:4", "--out", str(tmp_path / "b")])
    assert res.exit_code == 2 and "needs labels" in res.output
    bad = tmp_path / "labels.csv"
    bad.write_text("id,smile\n1,0\n")
    res = r.invoke(main, ["baselines", "--methods", "interfacegan", "--generator", str(ckpt), "--labels", str(bad),
                          "--region", "rect:3,3,11,9", "--layers", "1:4", "--out", str(tmp_path / "c")])
    assert res.exit_code == 2 and "missing column 'seed' or 'w'" in res.output
    for name in "abc":
        assert not (tmp_path / name).exists()                      # no run, not even an empty store, left behind


def test_a_region_interfacegan_cannot_reach_leaves_no_run(tmp_path):
    from mgm_analysis.cli import main

    res = CliRunner().invoke(main, ["baselines", "--methods", "interfacegan", "--region", "chin", "--out",
                                    str(tmp_path / "s")])
    assert res.exit_code == 2 and "cannot reach region 'chin'" in res.output
    assert not (tmp_path / "s").exists()


# ------------------------------------------------------------------ the second, independent reader
def test_semantic_metrics_read_by_both_readers():
    from mgm_analysis.generators import load_generator
    from mgm_analysis.generators.toyfaces import data_path
    from mgm_analysis.generators.toyfaces.reader2 import READER2_WEIGHTS, predict_factors2
    from mgm_analysis.generators.toyfaces.regressor import predict_factors
    from mgm_analysis.metrics import semantic_locality
    from mgm_analysis.render import render_frames
    from mgm_analysis.semantic import semantic_metrics

    if not data_path(READER2_WEIGHTS).exists():
        pytest.skip(f"{READER2_WEIGHTS} is not in mgm_analysis/data/")
    G = load_generator("toyfaces")
    z = torch.randn(5, G.z_dim, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ws = G.broadcast(G.mapping(z, 0.7))
    frames = render_frames(G, ws)
    got = semantic_metrics(G, frames[1:], frames[0], ["mouth"], factor_change=True)
    idx = [0, 1, 2]                                                 # mouth_open, mouth_smile, mouth_width

    record = torch.load(data_path(READER2_WEIGHTS), weights_only=True)["heldout_render_r2"]
    readable = [i for i, name in enumerate(FACTORS) if record[name] >= 0.5]   # the reader's own record

    def read(fn, cols):
        x = torch.from_numpy(frames).permute(0, 3, 1, 2) * 2 - 1
        f = fn(x).numpy()[:, cols]
        return semantic_locality(f[1:], f[0], [cols.index(i) for i in idx])

    assert got["semantic_reader"] == "reader2"
    assert got["semantic_locality"] == pytest.approx(read(predict_factors2, readable), abs=1e-6)
    assert got["semantic_locality_shipped"] == pytest.approx(read(predict_factors, list(range(17))), abs=1e-6)


def test_readable_factors_follow_the_recorded_r2(tmp_path):
    from mgm_analysis.generators.toyfaces.reader2 import readable_factors

    r2 = {name: 0.9 for name in FACTORS}
    r2["nose_length"], r2["gaze_x"] = 0.02, 0.49
    torch.save({"heldout_render_r2": r2}, tmp_path / "r.pt")
    got = readable_factors(str(tmp_path / "r.pt"))
    assert [FACTORS[i] for i, ok in enumerate(got) if not ok] == ["gaze_x", "nose_length"]


@pytest.mark.slow
def test_second_reader_reads_renders():
    from mgm_analysis.generators.toyfaces import data_path
    from mgm_analysis.generators.toyfaces.reader2 import READER2_WEIGHTS, predict_factors2, readable_factors
    from mgm_analysis.generators.toyfaces.renderer import NUM_FACTORS, render

    if not data_path(READER2_WEIGHTS).exists():
        pytest.skip(f"{READER2_WEIGHTS} is not in mgm_analysis/data/")
    f = torch.rand(400, NUM_FACTORS, generator=torch.Generator().manual_seed(4242))
    pred = predict_factors2(render(f))
    r2 = (1 - ((pred - f) ** 2).sum(0) / ((f - f.mean(0)) ** 2).sum(0)).tolist()  # written out: R² per factor
    readable = readable_factors()
    for name, ok, r in zip(FACTORS, readable, r2, strict=True):   # the recorded mask matches fresh renders
        assert (r >= 0.9) if ok else (r < 0.5), (name, r)
    assert sum(readable) >= 16                                        # it misses at most one factor (nose_length)


# ------------------------------------------------------------------ the loop baseline, strength and equal extent
def _hand_frames(g, ws):
    """Images [n, 3, H, W] of the linear generator's latents, written out with numpy from its planted matrix."""
    ls, le = g.layers
    x = np.asarray(ws, np.float64)[:, ls:le].reshape(len(ws), -1)
    return g.base.numpy()[None] + (x @ g.J.numpy().T).reshape(len(ws), 3, g.resolution, g.resolution)


def _inside(g, imgs, ref):
    """Per frame: D_in (mean squared difference over the mask's pixels and channels) and the mask-weighted
    difference vectors, by hand."""
    m = g.mask.numpy().astype(bool)
    diff = (imgs - ref[None])[:, :, m].reshape(len(imgs), -1)
    return (diff**2).mean(1), diff


def _loop_setup(n=16, c=0.02):
    from mgm_analysis.config import default_config
    from mgm_analysis.masks import parse_region

    g = LinearGenerator(seed=5)
    with torch.no_grad():
        g.base.zero_()                                   # no clamping: the closed forms hold exactly
    reg = parse_region("rect:0,0,8,3", g.resolution, "toyfaces")
    assert np.array_equal(reg.mask, g.mask.numpy())
    cfg = default_config("linear", "l2", None, n_frames=n, layer_start=1, layer_end=3, offset=c)
    return g, reg, cfg, np.zeros((g.num_ws, g.w_dim), np.float32)


def test_the_loop_baseline_is_an_ellipse_of_equal_inside_distance():
    from mgm_analysis.kinds.baseline import baseline_trajectory

    g, reg, cfg, w_ref = _loop_setup()
    res = baseline_trajectory("jacobian_loop", g, w_ref, reg, cfg, k=4)
    assert res.closed and res.path["closed"] and res.path["sweep_deg"] == pytest.approx(360)
    ref = _hand_frames(g, w_ref[None])[0]
    d_in, diff = _inside(g, _hand_frames(g, res.ws), ref)
    assert d_in.mean() == pytest.approx(cfg.offset, rel=2e-3)                  # equal strength
    np.testing.assert_allclose(d_in, cfg.offset, rtol=0.02)                     # every frame at ≈ c
    to_ref = np.linalg.norm(diff, axis=1)
    pair = np.linalg.norm(diff[:, None] - diff[None], axis=2)
    assert pair.max() / to_ref.max() == pytest.approx(2.0, abs=0.02)           # spread: opposite edits
    free = res.ws[:, 1:3].reshape(len(res.ws), -1).astype(np.float64)
    sv = np.linalg.svd(free, compute_uv=False)
    assert sv[2] <= 1e-4 * sv[0]                                                # a plane through w* ...
    assert np.abs(free.mean(0)).max() <= 1e-5 * np.abs(free).max()             # ... centred on it (closed)
    assert np.array_equal(res.ws[:, [0, 3]], np.repeat(w_ref[None, [0, 3]], len(free), 0))
    S = g.S.numpy()
    assert all(_cos_to_span(f, S) >= 0.99 for f in free)                        # in the planted local plane
    steps = np.linalg.norm(np.roll(diff, -1, 0) - diff, axis=1)                # closed: the wrap-around step too
    assert steps.sum() / to_ref.mean() == pytest.approx(2 * len(diff) * np.sin(np.pi / len(diff)), rel=0.02)


@pytest.mark.parametrize("target", [1.5, 3.0])
def test_the_loop_baseline_is_cut_to_the_arc_of_equal_inside_path(target):
    from mgm_analysis.kinds.baseline import baseline_trajectory

    g, reg, cfg, w_ref = _loop_setup()
    res = baseline_trajectory("jacobian_loop", g, w_ref, reg, cfg, k=4, inside_path=target)
    assert not res.closed and res.path["sweep_deg"] < 360
    ref = _hand_frames(g, w_ref[None])[0]
    d_in, diff = _inside(g, _hand_frames(g, res.ws), ref)
    assert d_in.mean() == pytest.approx(cfg.offset, rel=2e-3)
    steps = np.linalg.norm(diff[1:] - diff[:-1], axis=1)                        # open: no closing step
    path = steps.sum() / np.linalg.norm(diff, axis=1).mean()
    assert path == pytest.approx(target, rel=0.03)
    # on a circle of edits, an arc of sweep φ over n frames has path (n − 1)·2·sin(φ / (2(n − 1)))
    phi = np.radians(res.path["sweep_deg"])
    assert path == pytest.approx(2 * (len(diff) - 1) * np.sin(phi / (2 * (len(diff) - 1))), rel=0.02)


def test_a_longer_target_keeps_the_whole_loop():
    from mgm_analysis.kinds.baseline import baseline_trajectory

    g, reg, cfg, w_ref = _loop_setup()
    res = baseline_trajectory("jacobian_loop", g, w_ref, reg, cfg, k=4, inside_path=20.0)
    assert res.closed and res.path["extent"]["target_inside_path"] == 20.0


def test_strength_scales_the_target_and_the_loop_matches_the_discovered_run(tiny_ckpt, tmp_path):
    """A discovered run at 2·c in the store, then the line and the loop at strength 2: offsets 2·c recorded,
    the lines open, the loop cut to the discovered run's inside path (measured here from its saved frames)."""
    from mgm_analysis import store
    from mgm_analysis.jobs import JobSpec, run_job
    from mgm_analysis.method_runs import run_baseline
    from mgm_analysis.metrics import inside_path

    ckpt, G = tiny_ckpt
    out = tmp_path / "runs"
    disc = store.load_run(run_job(JobSpec(kind="discover", generator=str(ckpt), region="rect:3,3,11,9", seed=0,
                                          config={**CFG, "epochs": 3, "offset": 2 * CFG["offset"]},
                                          params={"strength": 2.0}), out, G=G))
    target = inside_path(disc.frames, disc.reference_img, disc.mask,  # from its PNGs
                         closed=bool(disc.meta["config"]["closed_loop"]))
    line = store.load_run(run_baseline(G, "jacobian", "rect:3,3,11,9", seed=0, out=out, config=CFG, strength=2))
    loop = store.load_run(run_baseline(G, "jacobian_loop", "rect:3,3,11,9", seed=0, out=out, config=CFG,
                                       strength=2))
    for run in (line, loop):
        assert run.meta["config"]["offset"] == pytest.approx(2 * CFG["offset"])
        assert run.meta["provenance"]["params"]["strength"] == 2.0
        assert run.meta["provenance"]["params"]["c"] == pytest.approx(CFG["offset"])
    assert line.meta["config"]["closed_loop"] is False
    extent = loop.meta["provenance"]["params"]["path"]["extent"]
    assert extent["source_run"] == disc.run_id and extent["target_inside_path"] == pytest.approx(target, rel=2e-3)
    got = inside_path(loop.frames, loop.reference_img, loop.mask, closed=bool(loop.meta["config"]["closed_loop"]))
    if extent["closed"]:                               # the discovered chain is longer than the whole ellipse
        assert target > got
    else:
        assert got == pytest.approx(target, rel=0.05)  # from the 8-bit PNGs: a little looser than the search's 2 %
    cat = store.catalog(out)
    assert sorted(cat.strength) == [2.0, 2.0, 2.0]


@pytest.mark.slow
def test_compare_methods_runs_every_method_at_every_strength_once(tiny_ckpt, tmp_path):
    from mgm_analysis import store
    from mgm_analysis.method_runs import compare_methods

    ckpt, _ = tiny_ckpt
    out = tmp_path / "runs"
    kw = dict(methods=["sefa", "jacobian_loop"], generator=str(ckpt), strengths="1,2", transfer_k=1, quiet=True,
              config={**CFG, "epochs": 2})
    res = compare_methods(["rect:3,3,11,9"], [0], out, **kw)
    assert res["failed"] == []
    runs = list(store.iter_runs(out))
    own = [r for r in runs if r.kind != "transfer"]
    got = sorted((store.run_method(r.meta), store.run_strength(r.meta), round(r.meta["config"]["offset"], 9))
                 for r in own)
    c = CFG["offset"]
    assert got == sorted((m, k, round(k * c, 9)) for m in ("discovery", "jacobian_loop", "sefa") for k in (1.0, 2.0))
    assert len(runs) == 2 * len(own)                                   # one transfer each
    loops = [r for r in own if store.run_method(r.meta) == "jacobian_loop"]
    disc = {store.run_strength(r.meta): r.run_id for r in own if r.kind == "discover"}
    for r in loops:                                                    # each matched to its own strength's chain
        assert r.meta["provenance"]["params"]["path"]["extent"]["source_run"] == disc[store.run_strength(r.meta)]
    from mgm_analysis.analysis.table import method_table

    table = method_table(store.catalog(out))
    assert list(table.columns[:4]) == ["method", "region", "strength", "runs"]
    assert {"spread", "inside_path", "locality", "jump_ratio"} <= set(table.columns)
    assert sorted(zip(table.method, table.strength, strict=True)) == sorted(
        (m, k) for m in ("discovery", "jacobian_loop", "sefa") for k in (1.0, 2.0))
    again = compare_methods(["rect:3,3,11,9"], [0], out, **kw)         # nothing new to make
    assert again["failed"] == [] and len(list(store.iter_runs(out))) == len(runs)


BAD_STRENGTHS = [("0", "not a finite number > 0"), ("-2", "not a finite number > 0"), ("nan", "not a finite"),
                 ("inf", "not a finite"), ("abc", "'abc' is not a number"), ("", "is empty"), (",", "is empty"),
                 (",".join(["1"] * 17), "has 17 values; give at most 16")]


@pytest.mark.parametrize("value,says", BAD_STRENGTHS)
def test_bad_strengths_are_one_line_exit_2_and_write_nothing(tiny_ckpt, tmp_path, value, says):
    from mgm_analysis.cli import main

    ckpt, _ = tiny_ckpt
    r = CliRunner()
    res = r.invoke(main, ["compare-methods", "--strengths", value, "--generator", str(ckpt), "--regions",
                          "rect:3,3,11,9", "--seeds", "0", "--out", str(tmp_path / "a")])
    assert res.exit_code == 2 and len(res.output.strip().splitlines()) == 1, res.output
    assert res.output.startswith("error: --strengths") and says in res.output and "e.g. --strengths 1,2,4,8" in res.output
    if value.count(",") < 2:                                         # --strength takes one value
        res = r.invoke(main, ["baselines", "--strength", value, "--generator", str(ckpt), "--region",
                              "rect:3,3,11,9", "--layers", "1:4", "--out", str(tmp_path / "b")])
        assert res.exit_code == 2 and len(res.output.strip().splitlines()) == 1, res.output
        assert res.output.startswith("error: --strength") and "e.g. --strength 2" in res.output
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_a_strength_beyond_the_largest_offset_is_refused_before_anything_is_made(tmp_path):
    from mgm_analysis.cli import main

    r = CliRunner()
    res = r.invoke(main, ["compare-methods", "--strengths", "1,100", "--regions", "eyes", "--seeds", "0",
                          "--out", str(tmp_path / "a")])
    assert res.exit_code == 2 and len(res.output.strip().splitlines()) == 1, res.output
    assert "--strengths 100 on region eyes" in res.output and "--offset must be <= 4" in res.output
    res = r.invoke(main, ["baselines", "--strength", "100", "--region", "eyes", "--out", str(tmp_path / "b")])
    assert res.exit_code == 2 and "--strength 100 on region eyes" in res.output and "<= 4" in res.output
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


# ------------------------------------------------------------------ the method table and its figures (no torch)
def _method_run(root, method, region, seed, strength, metrics, sources=()):
    from _fake_runs import fake_meta, make_run

    meta = fake_meta(region, seed)
    kind = "transfer" if sources else "discover" if method == "discovery" else "baseline"
    meta["provenance"] = {"kind": kind, "sources": list(sources),
                          "spec": {"params": {} if strength is None else {"strength": strength}}}
    if kind == "baseline":
        meta["provenance"]["method"] = method
    meta["metrics"] = dict(metrics)
    return make_run(root, region, seed, meta=meta, gif=False)


def _table_store(root):
    """Discovery, jacobian and jacobian_loop runs on two seeds at strengths 1 and 2 (one discovery without a
    recorded strength: made before strengths existed), with known metrics, and one transfer of a strength-2 loop
    run.  Returns {(method, strength): [metric dicts]} as written."""
    rng = np.random.default_rng(7)
    written = {}
    for method in ("discovery", "jacobian", "jacobian_loop"):
        for k in (1.0, 2.0):
            for seed in (0, 1):
                m = {name: float(rng.uniform(0, 1)) for name in ("locality", "semantic_locality", "realism")}
                m["spread"], m["inside_path"] = float(rng.uniform(0, 2)), float(rng.uniform(0, 7))
                recorded = None if (method, k, seed) == ("discovery", 1.0, 1) else k
                path = _method_run(root, method, "mouth", seed, recorded, m)
                written.setdefault((method, k), []).append((m, path))
    src = written[("jacobian_loop", 2.0)][0][1]
    _method_run(root, None, "mouth", 1000, None, {"transfer_locality": 0.625, "locality": 0.5}, sources=[src.name])
    return {key: [m for m, _ in v] for key, v in written.items()}


def test_method_table_groups_by_strength_with_the_extent_columns(tmp_path):
    from mgm_analysis.analysis.table import TABLE_METRICS, method_table
    from mgm_analysis.store import catalog

    written = _table_store(tmp_path)
    table = method_table(catalog(tmp_path))
    assert list(table.columns[:4]) == ["method", "region", "strength", "runs"]
    assert TABLE_METRICS.index("spread") < TABLE_METRICS.index("outside_change")
    assert {"spread", "inside_path", "realism", "locality", "semantic_locality"} <= set(table.columns)
    assert [(m, k) for m, k in zip(table.method, table.strength, strict=True)] == [
        ("discovery", 1.0), ("jacobian_loop", 1.0), ("jacobian", 1.0),
        ("discovery", 2.0), ("jacobian_loop", 2.0), ("jacobian", 2.0)]   # region, strength, then method order
    for row in table.itertuples():
        runs = written[(row.method, row.strength)]
        assert row.runs == len(runs) == 2
        for name in ("locality", "semantic_locality", "spread", "inside_path", "realism"):
            assert getattr(row, name) == pytest.approx(sum(r[name] for r in runs) / len(runs))
    tl = dict(zip(zip(table.method, table.strength, strict=True), table.transfer_locality, strict=True))
    assert tl[("jacobian_loop", 2.0)] == 0.625                          # the transfer counts at its source's K
    assert np.isnan(tl[("jacobian_loop", 1.0)])


def test_frontier_figure_draws_locality_against_strength_per_method_and_region():
    import plotly.graph_objects as go

    from mgm_analysis.analysis.table import fig_frontier

    rows = [("discovery", "mouth", 1.0, 0.97, 0.93), ("discovery", "mouth", 4.0, 0.95, 0.90),
            ("discovery", "mouth", 2.0, 0.96, 0.91), ("sefa", "mouth", 1.0, 0.30, 0.20),
            ("sefa", "eyes", 2.0, 0.50, np.nan), ("sefa", "eyes", 1.0, 0.55, 0.40)]
    table = pd.DataFrame(rows, columns=["method", "region", "strength", "locality", "semantic_locality"])
    table["spread"], table["inside_path"] = 1.5, 4.0
    fig = go.Figure(fig_frontier(table))
    panels = {"x": "locality", "x2": "semantic_locality"}
    lines = {(t.xaxis, t.name): (list(t.x), list(t.y)) for t in fig.data}
    assert set(lines) == {(x, n) for x in panels for n in ("discovery · mouth", "sefa · mouth", "sefa · eyes")}
    assert lines[("x", "discovery · mouth")] == ([1.0, 2.0, 4.0], [0.97, 0.96, 0.95])   # sorted by strength
    assert lines[("x2", "discovery · mouth")] == ([1.0, 2.0, 4.0], [0.93, 0.91, 0.90])
    assert lines[("x2", "sefa · eyes")] == ([1.0], [0.40])                              # NaN left out
    assert lines[("x", "sefa · eyes")] == ([1.0, 2.0], [0.55, 0.50])
    colours = {t.name: t.line.color for t in fig.data}
    assert colours["sefa · mouth"] == colours["sefa · eyes"] != colours["discovery · mouth"]
    assert fig.layout.xaxis.type == "log" and fig.layout.xaxis2.type == "log"
    assert [t.showlegend for t in fig.data if t.xaxis == "x2"] == [False] * 3
    assert "semantic locality" in fig.layout.annotations[1].text
    empty = go.Figure(fig_frontier(table.iloc[:0]))
    assert not empty.data and "no method runs" in empty.layout.title.text
