"""NVIDIA network pickles made by NVIDIA's own code (tests/fixtures/nvidia/make.py) against NVIDIA's own outputs.

The fixtures are small random StyleGAN2 generators from NVlabs/stylegan2-ada-pytorch
(training/networks.py) and NVlabs/stylegan3 (training/networks_stylegan2.py),
saved as their training loops save snapshots; the .npz files hold what NVIDIA's
networks computed (mapping with ψ 1, 0.7 and 0.7 with a cutoff; synthesis with
noise_mode='const', force_fp32=True). manifest.json records the settings each
was built with, as NVIDIA's modules hold them.
"""

import io
import json
import pickletools
import re
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from mgm_analysis.cli import main
from mgm_analysis.errors import CheckpointError
from mgm_analysis.generators import checkpoints, load_generator

FIX = Path(__file__).resolve().parent / "fixtures"
NV = FIX / "nvidia"
MANIFEST = json.loads((NV / "manifest.json").read_text())
REFUSED = {"sg3_resnet": "synthesis architecture 'resnet'", "sg3_orig": "synthesis architecture 'orig'",
           "ada_conditional": "conditional generators (c_dim=4)"}
LOADABLE = sorted(set(MANIFEST) - set(REFUSED))
TOL = 1e-4


def _rel_err(ours: torch.Tensor, ref: np.ndarray) -> float:
    """max |ours − NVIDIA| relative to NVIDIA's range where random weights make it exceed 1."""
    ref_t = torch.from_numpy(ref)
    assert ours.shape == ref_t.shape, f"shape {list(ours.shape)} vs NVIDIA's {list(ref_t.shape)}"
    return float((ours - ref_t).abs().max() / max(1.0, float(ref_t.abs().max())))


@pytest.fixture(scope="module")
def loaded():
    cache = {}

    def get(name):
        if name not in cache:
            cache[name] = load_generator(NV / f"{name}.pkl"), dict(np.load(NV / f"{name}.npz"))
        return cache[name]

    return get


def test_fixture_set_covers_both_repos_and_active_clamps():
    """Every loadable variant is checked below; among them each repository has one whose clamp changes the image
    (clamp_effect: NVIDIA's image with and without its clamps, computed by make.py with NVIDIA's code)."""
    repos = {m["repo"] for m in MANIFEST.values()}
    assert repos == {"NVlabs/stylegan2-ada-pytorch", "NVlabs/stylegan3"}
    active = {MANIFEST[n]["repo"] for n in LOADABLE if MANIFEST[n]["clamp_effect"] > 0.1}
    assert active == repos
    assert any(MANIFEST[n]["fp16_resolutions"] for n in LOADABLE)
    total = sum(p.stat().st_size for p in NV.iterdir() if p.suffix in (".pkl", ".npz", ".json"))
    assert total < 10e6, f"fixtures take {total / 1e6:.1f} MB"


@pytest.mark.parametrize("name", LOADABLE)
def test_matches_nvidia(name, loaded):
    G, ref = loaded(name)
    z = torch.from_numpy(ref["z"])
    cutoff = int(ref["truncation_cutoff"])
    with torch.no_grad():
        ws = G.broadcast(G.mapping(z))
        ws07 = G.broadcast(G.mapping(z, 0.7))
        ws07c = G.mapping(z, 0.7, truncation_cutoff=cutoff)
        errs = {
            "ws": _rel_err(ws, ref["ws"]),
            "ws ψ0.7": _rel_err(ws07, ref["ws_psi07"]),
            f"ws ψ0.7 cutoff {cutoff}": _rel_err(ws07c, ref["ws_psi07_cutoff"]),
            "img": _rel_err(G.synthesis(ws), ref["img"]),
            "img ψ0.7 cutoff": _rel_err(G.synthesis(ws07c), ref["img_psi07_cutoff"]),
            "img W+": _rel_err(G.synthesis(torch.from_numpy(ref["wplus"])), ref["img_wplus"]),
        }
    bad = {k: v for k, v in errs.items() if not v <= TOL}
    assert not bad, f"{name}: errors above {TOL:g}: {bad}"


@pytest.mark.parametrize("name", ["ada_fp32", "sg3_defaults"])
def test_G_ema_not_G(name, loaded):
    """The loader reads G_ema; G (re-randomised after the copy) gives other images, so the match above says which."""
    G, ref = loaded(name)
    with torch.no_grad():
        img = G.synthesis(G.broadcast(G.mapping(torch.from_numpy(ref["z"]))))
    assert _rel_err(img, ref["img"]) <= TOL
    assert _rel_err(img, ref["img_from_G"]) > 0.05


def _expected_info(m: dict) -> dict:
    """The rows `mgm info` must print, from what NVIDIA's modules held (manifest.json)."""
    kw = m["generator_kwargs"]
    syn = kw.get("synthesis_kwargs", kw)
    num_fp16 = m["num_fp16_res"] if m["num_fp16_res"] is not None else syn.get("num_fp16_res", 0)  # ada default 0
    return {"conv_clamp": m["conv_clamp"][0], "fp16_layers": " ".join(f"b{r}" for r in m["fp16_resolutions"]) or "none",
            "num_fp16_res": str(num_fp16), "resolution": f"{m['img_resolution']}x{m['img_resolution']}",
            "num_ws": str(m["num_ws"]), "w_dim": str(m["w_dim"]), "z_dim": str(m["z_dim"]),
            "mapping layers": str(m["mapping_layers"]), "format": "nvidia-pickle",
            "channels": " ".join(f"{r}:{c}" for r, c in sorted(m["channels"].items(), key=lambda rc: int(rc[0])))}


@pytest.mark.parametrize("name", LOADABLE)
def test_mgm_info_shows_true_settings(name):
    r = CliRunner().invoke(main, ["info", str(NV / f"{name}.pkl")])
    assert r.exit_code == 0, r.output
    rows = dict(re.split(r"\s{2,}", line.strip(), maxsplit=1) for line in r.output.strip().splitlines())
    want = _expected_info(MANIFEST[name])
    got = {k: rows.get(k) for k in want}
    assert got == want, f"{name}: mgm info printed {got}, NVIDIA's modules hold {want}"


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_refusals_name_the_real_reason(name):
    with pytest.raises(CheckpointError) as e:
        load_generator(NV / f"{name}.pkl")
    assert REFUSED[name] in str(e.value)
    r = CliRunner().invoke(main, ["info", str(NV / f"{name}.pkl")])
    text = r.output.strip()
    assert r.exit_code == 2 and len(text.splitlines()) == 1 and "Traceback" not in text, text
    assert REFUSED[name] in text
    assert "'skip' is not supported" not in text and "is missing" not in text


# ------------------------------------------------ settings NVIDIA never saved
def _strip(monkeypatch, attrs: dict[str, tuple[str, ...]]):
    """Load as if NVIDIA's modules did not hold these attributes (class name -> attribute names)."""
    real = checkpoints._reconstruct_stub

    def stub(meta):
        obj = real(meta)
        for name in attrs.get(obj.class_name, ()):
            obj.state.pop(name, None)
        return obj

    monkeypatch.setattr(checkpoints, "_reconstruct_stub", stub)  # the allow-list looks the name up at each load


@pytest.mark.parametrize("name, clamp, source", [
    ("sg3_defaults", 256, "default, never saved"),  # stylegan3 repo: conv_clamp=256 unless passed
    ("sg3_clamp", 0.5, "saved kwargs"),              # top-level Generator kwargs
    ("ada_fp16_clamp", 0.5, "saved kwargs"),         # synthesis_kwargs
    ("ada_fp32", None, "default, never saved"),      # stylegan2-ada-pytorch: None unless passed
])
def test_clamp_from_kwargs_and_defaults_without_layer_attributes(name, clamp, source, monkeypatch):
    _strip(monkeypatch, {"SynthesisLayer": ("conv_clamp",), "ToRGBLayer": ("conv_clamp",)})
    G = load_generator(NV / f"{name}.pkl")
    assert G.info.extra["conv_clamp"] == clamp and G.info.extra["conv_clamp_from"] == source
    ref = dict(np.load(NV / f"{name}.npz"))
    with torch.no_grad():
        assert _rel_err(G.synthesis(torch.from_numpy(ref["ws"])), ref["img"]) <= TOL


def test_fp16_blocks_from_num_fp16_res_without_block_attributes(monkeypatch):
    _strip(monkeypatch, {"SynthesisBlock": ("use_fp16",), "SynthesisNetwork": ("num_fp16_res",)})
    G = load_generator(NV / "sg3_defaults.pkl")  # stylegan3 default num_fp16_res=4 at 16²: blocks 8 and 16
    assert (G.info.extra["num_fp16_res"], G.info.extra["fp16_layers"]) == (4, "b8 b16")
    G = load_generator(NV / "ada_128.pkl")  # saved num_fp16_res=4 at 128²
    assert (G.info.extra["num_fp16_res"], G.info.extra["fp16_layers"]) == (4, "b16 b32 b64 b128")


def test_architecture_from_saved_kwargs_without_block_attributes(monkeypatch):
    _strip(monkeypatch, {"SynthesisBlock": ("architecture",)})
    with pytest.raises(CheckpointError, match="architecture 'resnet' \\(from the saved kwargs\\)"):
        load_generator(NV / "sg3_resnet.pkl")


# --------------------------------------------------------- no NVIDIA source
SOURCE_MARKERS = [b"def forward", b"import torch", b"class ", b"NVIDIA CORPORATION", b"Copyright",
                  b"persistent_class", b"def __init__", b"return x"]
LEGACY = b"\x80\x02\x8a\nl\xfc\x9cF\xf9 j\xa8P\x19."


def _strings(data: bytes, n_pickles=1):
    """(string, previous string) for every string the pickle(s) push, memo look-ups included, recursing into
    torch's storages (zip or legacy torch.save bytes)."""
    f, prev = io.BytesIO(data), None
    for _ in range(n_pickles):
        memo, last = {}, None
        for op, arg, _pos in pickletools.genops(f):
            value = None
            if op.name == "MEMOIZE":
                memo[len(memo)] = last
            elif op.name in ("PUT", "BINPUT", "LONG_BINPUT"):
                memo[arg] = last
            elif op.name in ("GET", "BINGET", "LONG_BINGET"):
                value = memo.get(arg)
            elif isinstance(arg, (bytes, bytearray)) and arg[:4] == b"PK\x03\x04":
                with zipfile.ZipFile(io.BytesIO(arg)) as z:
                    for n in z.namelist():
                        if n.endswith("data.pkl"):
                            yield from _strings(z.read(n))
            elif isinstance(arg, (bytes, bytearray)) and arg.startswith(LEGACY):
                yield from _strings(arg, 5)
            elif isinstance(arg, (str, bytes, bytearray)):
                value = arg
            last = value
            if isinstance(value, (str, bytes, bytearray)):
                yield value, prev
                prev = value


@pytest.mark.parametrize("path", sorted(p for d in ("nvidia", "nvidia_sg3") if (FIX / d).is_dir()
                                        for p in (FIX / d).iterdir() if p.suffix != ".py"), ids=lambda p: p.name)
def test_no_nvidia_source_in_shipped_fixtures(path):
    data = path.read_bytes()
    found = [m for m in SOURCE_MARKERS if m in data]
    assert not found, f"{path.name} contains {found}"
    if path.suffix == ".pkl":
        module_srcs = [s for s, prev in _strings(data) if prev == "module_src"]
        assert len(module_srcs) > 20, "too few persistent classes found: not a NVIDIA snapshot?"
        assert all(len(s) < 120 and "not embedded" in s for s in module_srcs), module_srcs[:1]
        assert max(len(s) for s, _ in _strings(data)) < 200  # a module's source would be thousands of characters
    if path.suffix == ".npz":
        assert all(np.load(path, allow_pickle=False)[k].dtype.kind in "fiu" for k in np.load(path).files)
