"""StyleGAN3 (configs T and R): NVIDIA's pickles load safely and give NVIDIA's outputs; gradients; bad input.

The fixtures in tests/fixtures/nvidia_sg3 were written by NVIDIA's own code
(make.py there): small T and R generators with every parameter and buffer
random, pickled as NVIDIA's training loop does, with NVIDIA's outputs
(noise_mode='const', force_fp32=True) beside them.
"""

import copy
import io
import pickle
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from mgm_analysis.cli import main
from mgm_analysis.errors import CheckpointError, UnsafePickleError
from mgm_analysis.generators import _numpy_pickle, load_generator
from mgm_analysis.generators.checkpoints import _flatten, _NetworkUnpickler
from mgm_analysis.generators.stylegan3 import (
    design_lowpass_filter,
    from_nvidia,
    tiny_stylegan3,
    upfirdn2d,
    upfirdn2d_ref,
)

FIX = Path(__file__).parent / "fixtures" / "nvidia_sg3"
CONFIGS = {"T": "sg3_t", "R": "sg3_r"}
TOL = 1e-4


def _image_tol(ref: torch.Tensor) -> float:
    """1e-4, relative to the image's range where that exceeds 1."""
    return TOL * max(1.0, float(ref.max() - ref.min()))


@pytest.fixture(scope="module", params=list(CONFIGS))
def loaded(request):
    name = CONFIGS[request.param]
    G = load_generator(FIX / f"{name}.pkl")
    ref = torch.load(FIX / f"{name}.out.pt", weights_only=True)
    return request.param, G, ref


def test_ws_match_nvidia(loaded):
    cfg, G, ref = loaded
    with torch.no_grad():
        ws = G.broadcast(G.mapping(ref["z"]))
        ws_psi = G.broadcast(G.mapping(ref["z"], float(ref["psi"])))
        ws_cut = G.broadcast(G.mapping(ref["z"], float(ref["psi"]), truncation_cutoff=int(ref["cutoff"])))
    for got, want in ((ws, ref["ws"]), (ws_psi, ref["ws_psi"]), (ws_cut, ref["ws_cut"])):
        assert got.shape == want.shape
        assert (got - want).abs().max() < TOL
    # truncation_cutoff leaves the later layers untouched
    assert torch.equal(ws_cut[:, int(ref["cutoff"]):], ws[:, int(ref["cutoff"]):])


@pytest.mark.parametrize("key, ws_key", [("img_z", "ws"), ("img_wplus", "wplus"), ("img_psi", "ws_cut")])
def test_images_match_nvidia(loaded, key, ws_key):
    cfg, G, ref = loaded
    with torch.no_grad():
        img = G.synthesis(ref[ws_key])
    want = ref[key]
    assert img.shape == want.shape == (ref["z"].shape[0], 3, G.resolution, G.resolution)
    assert float(want.std()) > 0.01  # the reference images are not flat
    assert (img - want).abs().max() < _image_tol(want)


def test_info_names_config_layers_resolution(loaded):
    cfg, G, ref = loaded
    extra = G.info.extra
    assert extra["config"] == cfg and G.info.format == "nvidia-pickle"
    assert G.num_ws == len(extra["layers"]) + 1 == ref["ws"].shape[1]
    assert G.resolution == ref["img_z"].shape[-1]
    r = CliRunner().invoke(main, ["info", str(FIX / f"{CONFIGS[cfg]}.pkl")])
    assert r.exit_code == 0, r.output
    assert re.search(rf"^config\s+{cfg}$", r.output, re.M) and re.search(rf"^resolution\s+{G.resolution}x{G.resolution}$", r.output, re.M)
    assert extra["layers"][0] in r.output and str(G.resolution) in r.output


def test_filters_designed_as_nvidia(loaded):
    """Filters designed here for each layer's geometry equal the ones NVIDIA's code designs (stored by make.py);
    the loaded model uses the pickle's (perturbed) buffers, which differ from both."""
    cfg, G, ref = loaded
    designed = ref["designed_filters"]
    assert designed  # every fixture has filtered layers
    for i, spec in enumerate(G.specs):
        for kind, taps, cutoff, hw, radial in (
                ("up_filter", spec.up_taps, spec.in_cutoff, spec.in_half_width, False),
                ("down_filter", spec.down_taps, spec.out_cutoff, spec.out_half_width, spec.down_radial)):
            mine = design_lowpass_filter(taps, cutoff, hw * 2, spec.tmp_sampling_rate, radial=radial)
            theirs = designed.get(f"{spec.name}.{kind}")
            if theirs is None:
                assert mine is None
                continue
            assert mine.shape == theirs.shape and (mine - theirs).abs().max() < 1e-6, (spec.name, kind)
            stored = getattr(G.layers[i], kind)
            assert (stored - theirs).abs().max() > 1e-5  # the fixture's buffers are not the designed ones
    if cfg == "R":
        assert any(s.down_radial for s in G.specs)


def test_gradient_finite_and_matches_float64(loaded):
    cfg, G, ref = loaded
    G64 = copy.deepcopy(G).double()
    g = torch.Generator().manual_seed(0)
    ws = ref["wplus"][:2].double()
    weights = torch.randn(ref["img_z"][:2].shape, generator=g, dtype=torch.float64)

    def loss(model, w):
        return (model.synthesis(w) * weights.to(w.dtype)).sum()

    w32 = ws.float().requires_grad_(True)
    loss(G, w32).backward()
    w64 = ws.clone().requires_grad_(True)
    loss(G64, w64).backward()
    g32, g64 = w32.grad.double(), w64.grad
    assert torch.isfinite(g32).all() and g64.abs().max() > 0
    assert (g32 - g64).abs().max() / g64.abs().max() < 1e-3
    # the float64 gradient against a central difference along a random direction (independent of autograd)
    d = torch.randn(ws.shape, generator=g, dtype=torch.float64)
    eps = 1e-8  # small: a leaky-ReLU kink crossed inside ±eps adds an error
    with torch.no_grad():
        fd = (loss(G64, ws + eps * d) - loss(G64, ws - eps * d)) / (2 * eps)
    assert abs(float(fd) - float((g64 * d).sum())) < 1e-6 * max(1.0, abs(float(fd)))


def test_every_ws_layer_matters(loaded):
    """Each of the num_ws latents reaches the image (input transform, each layer, the ToRGB)."""
    cfg, G, ref = loaded
    ws = ref["ws"][:1]
    with torch.no_grad():
        base = G.synthesis(ws)
        for i in range(G.num_ws):
            w2 = ws.clone()
            w2[:, i] += 0.5
            assert (G.synthesis(w2) - base).abs().max() > 1e-4, i


# ------------------------------------------------------------------ bad input
def test_conditional_pickle_refused_in_one_line(tmp_path):
    with pytest.raises(CheckpointError) as e:
        load_generator(FIX / "sg3_cond.pkl")
    assert "conditional" in str(e.value) and "not supported" in str(e.value) and "\n" not in str(e.value)
    r = CliRunner().invoke(main, ["info", str(FIX / "sg3_cond.pkl")])
    assert r.exit_code == 2 and "conditional" in r.output
    assert len(r.output.strip().splitlines()) == 1 and "Traceback" not in r.output


def _raw_g_ema(name="sg3_t"):
    with open(FIX / f"{name}.pkl", "rb") as f:
        return _NetworkUnpickler(f, name).load()["G_ema"]


@pytest.mark.parametrize("change, words", [
    (lambda G: G.state["_init_kwargs"].update(use_noise=True), "use_noise are not supported"),
    (lambda G: G.state["_init_kwargs"]["mapping_kwargs"].update(embed_features=4), "mapping_kwargs.embed_features"),
    (lambda G: setattr(G.state["_modules"]["synthesis"].state["_modules"]["L2_52_24"], "class_name", "MyLayer"),
     "non-default StyleGAN3 architecture"),
    (lambda G: setattr(G.state["_modules"]["synthesis"], "class_name", "SynthesisNetworkV2"),
     "non-default StyleGAN3 architecture"),
    (lambda G: G.state["_init_kwargs"].update(img_channels=1), "img_channels=1 is not supported"),
    (lambda G: G.state["_modules"]["synthesis"].state["_modules"]["L3_52_24"].state.update(padding=[1, 1, 1, 1]),
     "geometry"),
])
def test_unsupported_options_refused_in_one_line(change, words):
    G_ema = _raw_g_ema()
    change(G_ema)
    with pytest.raises(CheckpointError) as e:
        from_nvidia("x.pkl", G_ema, _flatten(G_ema), CheckpointError)
    msg = str(e.value)
    assert words in msg and "\n" not in msg and msg.startswith("x.pkl: ")


def test_per_layer_clamp_read_from_the_pickle():
    """NVIDIA's forward uses each layer's stored conv_clamp; a small one must bind."""
    G_ema = _raw_g_ema()
    G, _ = from_nvidia("x.pkl", G_ema, _flatten(G_ema), CheckpointError)
    G_ema.state["_modules"]["synthesis"].state["_modules"]["L3_52_24"].state["conv_clamp"] = 0.05
    Gc, extra = from_nvidia("x.pkl", G_ema, _flatten(G_ema), CheckpointError)
    assert Gc.layers[3].conv_clamp == 0.05 and G.layers[3].conv_clamp == 256 and extra["conv_clamp"] == [0.05, 256.0]
    ref = torch.load(FIX / "sg3_t.out.pt", weights_only=True)
    with torch.no_grad():
        assert (Gc.synthesis(ref["ws"]) - G.synthesis(ref["ws"])).abs().max() > 1e-3


def _unpickle(data: bytes):
    obj = _NetworkUnpickler(io.BytesIO(data), "test").load()
    return _numpy_pickle.unwrap(obj)


def test_numeric_arrays_load_numpy1_and_numpy2_names():
    arrays = {"f": np.arange(6, dtype="<f4").reshape(2, 3), "i": np.array([3, -1], dtype=">i8"),
              "b": np.array([True, False]), "F": np.asfortranarray(np.arange(6.0).reshape(2, 3)),
              "bc": np.broadcast_to(np.asarray(36), [2]), "s": np.float64(0.25)}
    data = pickle.dumps(arrays, protocol=3)  # protocol 3: GLOBAL opcodes with the module name in plain text
    assert b"numpy._core.multiarray\n_reconstruct" in data
    for blob in (data, data.replace(b"numpy._core.multiarray\n", b"numpy.core.multiarray\n")):  # numpy 1.x name
        out = _unpickle(blob)
        for k, v in arrays.items():
            assert isinstance(out[k], (np.ndarray, np.generic)) and out[k].dtype == v.dtype
            assert np.array_equal(out[k], v), k


@pytest.mark.parametrize("value", [np.array([1, "a", None], dtype=object), np.array(["ab", "c"]),
                                   np.zeros(2, dtype=[("x", "<f4"), ("y", "<i4")]), np.array([b"x"])])
def test_object_string_structured_arrays_refused(value):
    with pytest.raises(UnsafePickleError) as e:
        _unpickle(pickle.dumps({"a": value}, protocol=4))
    assert "numpy" in str(e.value)


def test_object_array_in_a_pickle_file_refused(tmp_path):
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"G_ema": np.array([print, 1], dtype=object)}, protocol=4))
    with pytest.raises(UnsafePickleError):
        load_generator(path)


def test_no_nvidia_source_in_shipped_files():
    """The pickles carry a placeholder per module instead of NVIDIA's source; no shipped file has NVIDIA's code."""
    nvidia = [b"Copyright (c) 2021, NVIDIA", b"def modulated_conv2d(", b"@persistence.persistent_class",
              b"misc.assert_shape", b"_filtered_lrelu_ref", b"class SynthesisNetwork(torch.nn.Module)"]
    # make.py is ours and names the strings it searches its output for, so it is not searched itself
    files = [p for p in FIX.iterdir() if p.name != "make.py"]
    files.append(Path(__file__).parents[1] / "mgm_analysis" / "generators" / "stylegan3.py")
    assert len(files) >= 6
    for path in files:
        blob = path.read_bytes()
        assert not [s for s in nvidia if s in blob], path
    for name in ("sg3_t", "sg3_r", "sg3_cond"):
        blob = (FIX / f"{name}.pkl").read_bytes()
        assert b"placeholder: source of training.networks_stylegan3 not embedded" in blob
    assert sum(p.stat().st_size for p in FIX.iterdir()) < 5 * 2**20


# ------------------------------------------------------------------ built here
@pytest.mark.parametrize("up, taps, pad", [(2, 12, (9, 8, 9, 8)), (4, 24, (-6, -9, -6, -9)), (2, 12, (1, 0, 3, 2)),
                                           (4, 24, (30, 30, -20, 0))])
def test_transposed_upsampling_equals_zero_insertion(up, taps, pad):
    """The up-sampling path (per-axis transposed convolutions) against a loop over the definition: insert
    zeros, pad or crop, convolve with the taps along each axis."""
    g = torch.Generator().manual_seed(up + taps)
    x = torch.randn(2, 3, 17, 15, generator=g, dtype=torch.float64)
    f = torch.randn(taps, generator=g, dtype=torch.float64)
    got = upfirdn2d(x, f, up=up, pad=pad, gain=up ** 2)
    px0, px1, py0, py1 = pad
    u = np.zeros((2, 3, 17 * up, 15 * up))
    u[:, :, ::up, ::up] = x.numpy()
    u = np.pad(u, [(0, 0), (0, 0), (max(py0, 0), max(py1, 0)), (max(px0, 0), max(px1, 0))])
    u = u[:, :, max(-py0, 0): u.shape[2] - max(-py1, 0), max(-px0, 0): u.shape[3] - max(-px1, 0)]
    fk = f.numpy()[::-1] * up  # convolution = correlation with the reversed taps; gain up per axis
    h, w = u.shape[2] - taps + 1, u.shape[3] - taps + 1
    want = np.zeros((2, 3, h, w))
    for i in range(h):
        for j in range(w):
            want[:, :, i, j] = np.einsum("bcyx,y,x->bc", u[:, :, i:i + taps, j:j + taps], fk, fk)
    assert got.shape == want.shape and np.abs(got.numpy() - want).max() < 1e-9
    assert torch.allclose(got, upfirdn2d_ref(x, f, up=up, pad=pad, gain=up ** 2), atol=1e-9)



def test_tiny_models_run_and_are_seeded():
    for cfg in ("T", "R"):
        a, b = tiny_stylegan3(cfg, seed=3), tiny_stylegan3(cfg, seed=3)
        z = torch.randn(2, a.z_dim, generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            ia, ib = a(z), b(z)
        assert ia.shape == (2, 3, 16, 16) and torch.isfinite(ia).all() and torch.equal(ia, ib)
        assert a.info.extra["config"] == cfg and a.config_name == cfg
