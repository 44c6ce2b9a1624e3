"""The StyleGAN2 generator against the reference implementation's outputs (../shared/fixtures/stylegan2)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from mgm_analysis.generators import load_generator

FIXTURES = Path(os.environ.get("MGM_REFERENCE_FIXTURES")
                or Path(__file__).resolve().parents[1].parent / "shared" / "fixtures" / "stylegan2")


@pytest.fixture(scope="module", autouse=True)  # module scope: before case_a builds anything
def _reference_fixtures_present():
    """Missing reference fixtures fail every test here under CI (CI=true) and skip them, with the reason, locally."""
    if (FIXTURES / "fixtures_A.pt").is_file():
        return
    msg = (f"rosinality reference fixtures not found at {FIXTURES} (expected ../shared/fixtures/stylegan2 beside the "
           "repository, or MGM_REFERENCE_FIXTURES): the StyleGAN2 forward pass is NOT checked against the reference")
    if os.environ.get("CI"):
        pytest.fail(msg + "; CI must provide them", pytrace=False)
    pytest.skip(msg)


W_TOL = 1e-5
IMG_TOL = 1e-4


@pytest.fixture(scope="module")
def case_a(tmp_path_factory):
    out = tmp_path_factory.mktemp("ckpt") / "ckpt_A.pt"
    # one process writes the checkpoint and prints its weights' digest
    digest = subprocess.run([sys.executable, str(FIXTURES / "make_weights.py"), str(FIXTURES / "keys_A.json"),
                             "--seed", "1000", "--out", str(out), "--digest"], check=True, capture_output=True,
                            text=True, timeout=300).stdout.strip()
    manifest = json.loads((FIXTURES / "manifest.json").read_text())
    G = load_generator(out)
    ref = torch.load(FIXTURES / "fixtures_A.pt", weights_only=True)
    return G, ref, manifest, out, digest


def _close(a, b, tol, name):
    assert a.shape == b.shape, f"{name}: expected the same shape, got {list(a.shape)} and {list(b.shape)}"
    err = (a - b).abs().max().item()
    assert err <= tol, f"{name}: max abs difference {err:.3g} > {tol:g}"


def test_weights_digest_matches_manifest(case_a):
    _, _, manifest, _, out = case_a
    digests = json.dumps(manifest)
    assert len(out) == 64 and out in digests, "weight digest differs from the manifest: torch's CPU random stream changed"


def test_every_fixture_tensor(case_a):
    G, ref, _, _, _ = case_a
    checked = set()
    with torch.no_grad():
        w = G.mapping(ref["z"])
        _close(w, ref["w"], W_TOL, "w")
        checked.add("w")
        t = ref["trunc_latent"]
        _close(G.style(torch.randn(4096, 512, generator=torch.Generator().manual_seed(1000 + 102))).mean(0, keepdim=True),
               t, W_TOL, "trunc_latent")
        checked.add("trunc_latent")
        _close(G.synthesis(G.broadcast(w)), ref["img_z_t1"], IMG_TOL, "img_z_t1")
        checked.add("img_z_t1")
        w07 = G.broadcast(G.truncate(w, 0.7, t))
        _close(w07, ref["wplus_z_t07"], W_TOL, "wplus_z_t07")
        checked.add("wplus_z_t07")
        _close(G.synthesis(w07), ref["img_z_t07"], IMG_TOL, "img_z_t07")
        checked.add("img_z_t07")
        _close(G.w_avg, ref["latent_avg"], 0, "latent_avg")
        checked.add("latent_avg")
        _close(G.synthesis(G.broadcast(G.mapping(ref["z"], 0.5))), ref["img_z_t05_latent_avg"], IMG_TOL,
               "img_z_t05_latent_avg")
        checked.add("img_z_t05_latent_avg")
        _close(G.style(torch.randn(2 * G.num_ws, 512, generator=torch.Generator().manual_seed(1000 + 103))).view(2, G.num_ws, 512),
               ref["wplus"], W_TOL, "wplus")
        checked.add("wplus")
        trace = {}
        _close(G.synthesis(ref["wplus"], trace=trace), ref["img_wplus"], IMG_TOL, "img_wplus")
        checked.add("img_wplus")
        for key in ref:
            if key.startswith("dbg_"):
                assert key in trace, f"{key} not produced by the trace"
                _close(trace[key], ref[key], IMG_TOL, key)
                checked.add(key)
        noise = [ref[f"noise.{i}"] for i in range(G.num_layers)]
        checked.update(f"noise.{i}" for i in range(G.num_layers))
        _close(G.synthesis(ref["wplus"], noise=noise), ref["img_wplus_noise"], IMG_TOL, "img_wplus_noise")
        _close(G.synthesis(ref["wplus"], noise=[torch.zeros_like(n) for n in noise]), ref["img_wplus_zero_noise"],
               IMG_TOL, "img_wplus_zero_noise")
        checked.update({"img_wplus_noise", "img_wplus_zero_noise"})
        k = int(ref["mix_inject_index"])
        ws_mix = G.style_mix(G.mapping(ref["mix_z1"]), G.mapping(ref["mix_z2"]), k)
        _close(ws_mix, ref["wplus_mix"], W_TOL, "wplus_mix")
        _close(G.synthesis(ws_mix), ref["img_mix"], IMG_TOL, "img_mix")
        checked.update({"wplus_mix", "img_mix", "mix_z1", "mix_z2", "mix_inject_index", "z"})
    assert checked == set(ref), f"fixture tensors not checked: {sorted(set(ref) - checked)}"


def test_info_of_fixture_checkpoint(case_a):
    G, _, _, path, _ = case_a
    assert (G.resolution, G.num_ws, G.w_dim) == (32, 8, 512)
    assert G.info.format == "rosinality" and len(G.info.sha256) == 64
