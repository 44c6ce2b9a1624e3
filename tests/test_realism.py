"""Realism on toyfaces: a face the renderer can draw scores low, the generator's own samples sit at their bar, a
face the renderer never draws (washed-out lips) is over it; the bar's cache."""

import numpy as np
import pytest
import torch

from mgm_analysis.generators import load_generator
from mgm_analysis.generators.toyfaces import realism as R
from mgm_analysis.generators.toyfaces.regressor import predict_factors
from mgm_analysis.generators.toyfaces.renderer import FACTORS, render
from mgm_analysis.masks import parse_region


@pytest.fixture(scope="module")
def G():
    return load_generator("toyfaces")


@pytest.fixture(scope="module")
def mouth():
    return parse_region("mouth", 64).mask


def _samples(G, seed, n=128, psi=0.7):
    z = torch.randn(n, G.z_dim, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        return G.synthesis(G.broadcast(G.mapping(z, psi)))


def _frames(img):
    return ((img.clamp(-1, 1) + 1) / 2).permute(0, 2, 3, 1).numpy()


def test_the_error_is_the_masked_rms_to_the_redrawing(G, mouth):
    img = _samples(G, 7, n=3)
    redrawn = render(predict_factors(img.clamp(-1, 1)), 64)           # in [-1, 1]
    want = []
    for k in range(3):
        d = ((_frames(img)[k] - ((redrawn[k].permute(1, 2, 0).numpy() + 1) / 2)) ** 2).mean(-1)
        want.append(np.sqrt((d * mouth).sum() / mouth.sum()))
    assert R.realism_errors(_frames(img), mouth) == pytest.approx(want, rel=1e-4)


@pytest.mark.slow
def test_renders_are_real_samples_sit_at_the_bar_and_washed_out_lips_are_not(G, mouth, tmp_path, monkeypatch):
    """And the bar's cache: written on disk once, read back by a process that has not rendered the samples (one
    test: the bar's 512 samples are its cost)."""
    R._MAPS.clear()
    bar = R.realism_bar(G, mouth, 0.7, cache_dir=tmp_path)
    # faces the renderer drew: far under the bar
    f = torch.rand(16, len(FACTORS), generator=torch.Generator().manual_seed(3))
    assert R.realism_errors(_frames(render(f, 64)), mouth).max() < 0.6 * bar
    # the generator's own samples (other draws than the bar's): about 95 % under it
    share = float((R.realism_errors(_frames(_samples(G, 11, n=256)), mouth) <= bar).mean())
    assert 0.88 <= share <= 0.995, share
    # the same samples with pale lips (the red of the lips pulled half way to the skin around them)
    img = _frames(_samples(G, 11, n=32))
    pale = img.copy()
    red = (img[..., 0] - img[..., 1] > 0.35) & (mouth[None] > 0)   # lip pixels: strongly red
    skin = img[:, 50:52, 20:24].mean((1, 2))                       # cheek colour below the mouth corners
    pale[red] = 0.5 * img[red] + 0.5 * np.repeat(skin[:, None, None], 64, 1).repeat(64, 2)[red]
    assert red.sum() > 32 * 20                                     # the edit touches every face's lips
    ratio_before = R.realism_errors(img, mouth) / bar
    ratio_after = R.realism_errors(pale, mouth) / bar
    assert np.median(ratio_after) > 1.0 > np.median(ratio_before), (ratio_before, ratio_after)

    # the cache
    (cached,) = list(tmp_path.iterdir())
    assert cached.name.startswith("realism-") and cached.suffix == ".npy"
    R._MAPS.clear()
    monkeypatch.setattr(R, "_error_maps", lambda *a, **k: pytest.fail("the samples were rendered again"))
    assert R.realism_bar(G, mouth, 0.7, cache_dir=tmp_path) == pytest.approx(bar, rel=2e-3)  # float16 on disk
    monkeypatch.undo()
    m = R.realism_metrics(G, np.zeros((2, 64, 64, 3)) + 0.5, mouth, 0.7, cache_dir=tmp_path)
    assert m["realism"] == pytest.approx(max(m["realism_frames"])) and len(m["realism_frames"]) == 2
