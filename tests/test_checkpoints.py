"""Loading checkpoints of both formats, `mgm info`, and refusing bad or malicious files."""

import argparse
import pickle
import sys
import types

import pytest
import torch
from click.testing import CliRunner

from mgm_analysis.cli import main
from mgm_analysis.errors import CheckpointError, UnsafePickleError
from mgm_analysis.generators import load_generator
from mgm_analysis.generators.checkpoints import save_checkpoint
from mgm_analysis.generators.stylegan2 import StyleGAN2, tiny_generator


@pytest.fixture(scope="module")
def tiny():
    return tiny_generator(resolution=16, w_dim=32, seed=3)


def _images(G, seed=0, n=2):
    z = torch.randn(n, G.z_dim, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        return G.synthesis(G.broadcast(G.mapping(z)))


def _mgm(*args):
    return CliRunner().invoke(main, list(map(str, args)))


def _assert_one_line_error(result, *needles):
    assert result.exit_code != 0
    text = result.output.strip()
    assert "Traceback" not in text and len(text.splitlines()) == 1, text
    assert text.startswith("error: ")
    for n in needles:
        assert n in text, f"{n!r} not in {text!r}"


# ---------------------------------------------------------------- the model
def test_tiny_forward_backward_wrt_ws(tiny):
    ws = tiny.broadcast(tiny.mapping(torch.randn(3, tiny.z_dim))).clone().requires_grad_(True)
    img = tiny.synthesis(ws)
    assert img.shape == (3, 3, 16, 16)
    img.square().mean().backward()
    assert ws.grad is not None and ws.grad.abs().sum() > 0
    assert all(p.grad is None for p in tiny.parameters())  # the generator is frozen


def test_same_latent_same_image(tiny):
    assert torch.equal(_images(tiny), _images(tiny))


def test_style_mixing_and_truncation(tiny):
    w1, w2 = tiny.mapping(torch.randn(1, 32)), tiny.mapping(torch.randn(1, 32))
    ws = tiny.style_mix(w1, w2, 3)
    assert torch.equal(ws[0, :3], w1.expand(3, -1)) and torch.equal(ws[0, 3:], w2.expand(tiny.num_ws - 3, -1))
    assert torch.allclose(tiny.truncate(w1, 0.0), tiny.w_avg[None])


def test_shape_errors_name_the_dimension(tiny):
    with pytest.raises(ValueError, match=r"ws must be \[B, 6, 32\]"):
        tiny.synthesis(torch.zeros(1, 5, 32))


# ------------------------------------------------------- rosinality formats
def test_roundtrip_mgm_checkpoint(tiny, tmp_path):
    path = tmp_path / "g.pt"
    save_checkpoint(tiny, path)
    G = load_generator(path)
    assert torch.equal(_images(G), _images(tiny))
    assert G.info.format == "rosinality" and G.channels == tiny.channels


def test_bare_state_dict_and_training_checkpoint(tiny, tmp_path):
    sd = {k: v for k, v in tiny.state_dict().items() if k != "w_avg"}
    torch.save(sd, tmp_path / "bare.pt")
    G = load_generator(tmp_path / "bare.pt")
    assert G.info.format == "rosinality-state-dict"
    assert "no latent_avg" in " ".join(G.info.extra["notes"])
    torch.save({"g": sd, "d": {"x": torch.zeros(1)}, "g_ema": sd, "g_optim": {}, "args": argparse.Namespace(size=16),
                "latent_avg": tiny.w_avg}, tmp_path / "train.pt")
    G = load_generator(tmp_path / "train.pt")
    assert G.info.format == "rosinality-training"
    assert torch.equal(_images(G), _images(tiny))


def test_mgm_info_prints_summary(tiny, tmp_path):
    save_checkpoint(tiny, tmp_path / "g.pt")
    r = _mgm("info", tmp_path / "g.pt")
    assert r.exit_code == 0, r.output
    for needle in ("format", "rosinality", "16x16", "num_ws", "6", "w_dim", "32", "parameters", "sha256"):
        assert needle in r.output


# ----------------------------------------------------------- NVIDIA pickles
def _persistence_modules(monkeypatch):
    """Fake `torch_utils.persistence` and `dnnlib.util` so that pickle records NVIDIA's global names."""
    persistence = types.ModuleType("torch_utils.persistence")

    def _reconstruct_persistent_obj(meta):  # never called by the loader under test
        raise AssertionError("the real reconstructor must not run")

    _reconstruct_persistent_obj.__module__ = "torch_utils.persistence"
    _reconstruct_persistent_obj.__qualname__ = "_reconstruct_persistent_obj"
    persistence._reconstruct_persistent_obj = _reconstruct_persistent_obj
    util = types.ModuleType("dnnlib.util")

    class EasyDict(dict):
        pass

    EasyDict.__module__, EasyDict.__qualname__ = "dnnlib.util", "EasyDict"
    util.EasyDict = EasyDict
    for name, mod in {"torch_utils": types.ModuleType("torch_utils"), "torch_utils.persistence": persistence,
                      "dnnlib": types.ModuleType("dnnlib"), "dnnlib.util": util}.items():
        monkeypatch.setitem(sys.modules, name, mod)
    return persistence, EasyDict


class _Obj:
    """An object that pickles the way NVIDIA's persistent classes do."""

    def __init__(self, recon, class_name, params=None, buffers=None, modules=None, src="", **attrs):
        self.recon, self.meta = recon, dict(
            type="class", version=6, module_src=src, class_name=class_name,
            state=dict(_parameters=params or {}, _buffers=buffers or {}, _modules=modules or {},
                       _non_persistent_buffers_set=set(), training=False, **attrs))

    def __reduce__(self):
        return (self.recon, (self.meta,))


def _nvidia_pickle(G, path, monkeypatch, marker, c_dim=0, architecture="skip", conv_clamp=None, stylegan3=False):
    persistence, EasyDict = _persistence_modules(monkeypatch)
    recon = persistence._reconstruct_persistent_obj
    src = f"open({str(marker)!r}, 'w').write('pwned')\n"  # what NVIDIA's loader would exec
    sd = G.state_dict()
    P = torch.nn.Parameter

    def layer(prefix, torgb=False, noise_index=None):
        params = {"weight": P(sd[prefix + ".conv.weight"][0].clone()),
                  "bias": P(sd[prefix + ".bias"].reshape(3).clone() if torgb else sd[prefix + ".activate.bias"].clone())}
        buffers = {}
        if not torgb:
            params["noise_strength"] = P(sd[prefix + ".noise.weight"].reshape([]).clone())
            buffers["noise_const"] = sd[f"noises.noise_{noise_index}"][0, 0].clone()
        affine = _Obj(recon, "FullyConnectedLayer", {"weight": P(sd[prefix + ".conv.modulation.weight"].clone()),
                                                      "bias": P(sd[prefix + ".conv.modulation.bias"].clone())},
                      src=src, lr_multiplier=1)
        return _Obj(recon, "ToRGBLayer" if torgb else "SynthesisLayer", params, buffers, {"affine": affine}, src=src)

    fcs = {f"fc{i}": _Obj(recon, "FullyConnectedLayer", {"weight": P(sd[f"style.{i + 1}.weight"].clone()),
                                                         "bias": P(sd[f"style.{i + 1}.bias"].clone())},
                          src=src, lr_multiplier=0.01) for i in range(G.n_mlp)}
    mapping = _Obj(recon, "MappingNetwork", buffers={"w_avg": G.w_avg.clone()}, modules=fcs, src=src)
    blocks = {"b4": _Obj(recon, "SynthesisBlock", {"const": P(sd["input.input"][0].clone())},
                         modules={"conv1": layer("conv1", noise_index=0), "torgb": layer("to_rgb1", torgb=True)}, src=src)}
    for j, r in enumerate(list(G.channels)[1:]):
        blocks[f"b{r}"] = _Obj(recon, "SynthesisBlock", modules={
            "conv0": layer(f"convs.{2 * j}", noise_index=2 * j + 1), "conv1": layer(f"convs.{2 * j + 1}", noise_index=2 * j + 2),
            "torgb": layer(f"to_rgbs.{j}", torgb=True)}, src=src)
    if stylegan3:
        blocks["input"] = _Obj(recon, "SynthesisInput", {"freqs": P(torch.zeros(4, 2))}, src=src)
    synthesis = _Obj(recon, "SynthesisNetwork", modules=blocks, src=src)
    kwargs = EasyDict(z_dim=G.z_dim, c_dim=c_dim, w_dim=G.w_dim, img_resolution=G.resolution, img_channels=3,
                      mapping_kwargs=EasyDict(num_layers=G.n_mlp),
                      synthesis_kwargs=EasyDict(channel_base=1024, channel_max=16, num_fp16_res=2,
                                                conv_clamp=conv_clamp, architecture=architecture))
    G_ema = _Obj(recon, "Generator", modules={"mapping": mapping, "synthesis": synthesis}, src=src,
                 _init_args=(), _init_kwargs=kwargs)
    with open(path, "wb") as f:
        pickle.dump(dict(training_set_kwargs=None, G=G_ema, D=None, G_ema=G_ema, augment_pipe=None), f, protocol=4)
    return path


def test_nvidia_pickle_loads_same_images_and_never_runs_module_src(tiny, tmp_path, monkeypatch):
    marker = tmp_path / "ran.txt"
    path = _nvidia_pickle(tiny, tmp_path / "net.pkl", monkeypatch, marker)
    monkeypatch.undo()  # the loader must work without the fake modules
    G = load_generator(path)
    assert G.info.format == "nvidia-pickle" and G.info.extra["num_fp16_res"] == 2
    assert torch.equal(G.w_avg, tiny.w_avg)
    assert torch.allclose(_images(G), _images(tiny), atol=1e-6)
    assert not marker.exists()
    r = _mgm("info", path)
    assert r.exit_code == 0 and "nvidia-pickle" in r.output, r.output


def test_nvidia_conv_clamp_is_honoured(tiny, tmp_path, monkeypatch):
    path = _nvidia_pickle(tiny, tmp_path / "net.pkl", monkeypatch, tmp_path / "m", conv_clamp=0.05)
    G = load_generator(path)
    assert G.conv_clamp == 0.05
    trace = {}
    with torch.no_grad():
        G.synthesis(G.broadcast(G.mapping(torch.randn(2, 32))), trace=trace)
    assert trace["dbg_conv1_out"].abs().max() <= 0.05 + 1e-7
    assert not torch.allclose(_images(G), _images(tiny), atol=1e-3)


@pytest.mark.parametrize("kw, needle", [
    (dict(c_dim=5), "conditional"),
    (dict(architecture="resnet"), "'resnet' is not supported"),
    (dict(stylegan3=True), "StyleGAN3"),
])
def test_unsupported_networks(tiny, tmp_path, monkeypatch, kw, needle):
    path = _nvidia_pickle(tiny, tmp_path / "net.pkl", monkeypatch, tmp_path / "m", **kw)
    with pytest.raises(CheckpointError, match=needle):
        load_generator(path)
    _assert_one_line_error(_mgm("info", path), needle)


def test_old_tensorflow_pickle_is_unsupported(tmp_path, monkeypatch):
    mod = types.ModuleType("dnnlib.tflib.network")

    class Network:
        pass

    Network.__module__, Network.__qualname__ = "dnnlib.tflib.network", "Network"
    mod.Network = Network
    for name in ("dnnlib", "dnnlib.tflib", "dnnlib.tflib.network"):
        monkeypatch.setitem(sys.modules, name, mod if name.endswith("network") else types.ModuleType(name))
    path = tmp_path / "tf.pkl"
    path.write_bytes(pickle.dumps((Network(), Network(), Network())))
    _assert_one_line_error(_mgm("info", path), "TensorFlow")


# ------------------------------------------------------------ malicious files
class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.marker}",))


def test_malicious_pickle_refused_without_side_effect(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"G_ema": _Evil(marker)}))
    with pytest.raises(UnsafePickleError, match="refused"):
        load_generator(path)
    _assert_one_line_error(_mgm("info", path), "refused", "system")
    assert not marker.exists()


def test_malicious_torch_file_refused_without_side_effect(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    torch.save({"g_ema": _Evil(marker)}, path)
    _assert_one_line_error(_mgm("info", path), "refused")
    assert not marker.exists()


# ---------------------------------------------------------------- bad input
def test_bad_inputs_give_one_line(tiny, tmp_path):
    _assert_one_line_error(_mgm("info", tmp_path / "nope.pt"), "no such file")
    _assert_one_line_error(_mgm("info", "nosuchmodel"), "unknown generator")
    (tmp_path / "notes.txt").write_text("hello, not a checkpoint\n")
    _assert_one_line_error(_mgm("info", tmp_path / "notes.txt"), "not a PyTorch checkpoint")
    save_checkpoint(tiny, tmp_path / "g.pt")
    data = (tmp_path / "g.pt").read_bytes()
    (tmp_path / "trunc.pt").write_bytes(data[: len(data) // 2])
    _assert_one_line_error(_mgm("info", tmp_path / "trunc.pt"), "truncated")
    torch.save({"something": torch.zeros(3)}, tmp_path / "other.pt")
    _assert_one_line_error(_mgm("info", tmp_path / "other.pt"), "no generator found")


def test_shape_mismatch_names_key_and_shapes(tiny, tmp_path):
    sd = {k: v.clone() for k, v in tiny.state_dict().items() if k != "w_avg"}
    sd["convs.1.conv.modulation.weight"] = torch.zeros(7, 32)
    torch.save({"g_ema": sd}, tmp_path / "bad.pt")
    _assert_one_line_error(_mgm("info", tmp_path / "bad.pt"), "convs.1.conv.modulation.weight", "[7, 32]", "[16, 32]")
    sd = {k: v.clone() for k, v in tiny.state_dict().items() if k != "w_avg"}
    del sd["convs.2.activate.bias"]
    torch.save({"g_ema": sd}, tmp_path / "missing.pt")
    _assert_one_line_error(_mgm("info", tmp_path / "missing.pt"), "convs.2.activate.bias", "missing")


def test_model_config_roundtrip():
    G = StyleGAN2(8, w_dim=16, n_mlp=2, channels={4: 8, 8: 4})
    G2 = StyleGAN2(**{**G.config(), "channels": {int(k): v for k, v in G.config()["channels"].items()}})
    assert G2.channels == G.channels and G2.num_ws == 4
