"""Masked distances (map and paper modes, l2 and LPIPS), the springs, the offset ramp."""

import pytest
import torch

from mgm_analysis.errors import MGMError
from mgm_analysis.losses import LPIPS_BACKBONE_FILE, load_lpips, make_distance, offsets_for, spring_energy
from mgm_analysis.masks import rect_mask


def _dist(res=16, box=(4, 8, 12, 14), **kw):
    return make_distance(rect_mask([box], res), boxes=(box,), **kw)


@pytest.mark.parametrize("mode", ["map", "paper"])
def test_identical_images_give_zero(mode):
    img = (torch.rand(1, 3, 16, 16) * 2 - 1).expand(2, -1, -1, -1)
    d_in, d_out = _dist(mode=mode)(img, img[:1])
    assert d_in.shape == (2,) and torch.all(d_in == 0) and torch.all(d_out == 0)


@pytest.mark.parametrize("mode", ["map", "paper"])
def test_edit_inside_mask_leaves_outside_zero(mode):
    ref = torch.zeros(1, 3, 16, 16)
    img = ref.clone()
    img[..., 8:14, 4:12] = 0.5
    d_in, d_out = _dist(mode=mode)(img, ref)
    assert float(d_out) == 0 and float(d_in) == pytest.approx(0.25)


def test_edit_outside_is_outside_only():
    ref = torch.zeros(1, 3, 16, 16)
    img = ref.clone()
    img[..., 0:2, :] = 1.0  # top strip
    d_in, d_out = _dist()(img, ref)
    assert float(d_in) == 0 and float(d_out) == pytest.approx(32 / (256 - 48))


def test_paper_mode_equals_map_mode_for_l2():
    img, ref = torch.rand(3, 3, 16, 16), torch.rand(1, 3, 16, 16)
    a = _dist(mode="map")(img, ref)
    b = _dist(mode="paper")(img, ref)
    assert torch.allclose(a[0], b[0], atol=1e-6) and torch.allclose(a[1], b[1], atol=1e-6)


def test_paper_mode_weights_strips_by_area():
    # box touching the top edge: three strips (below, left, right)
    box = (4, 0, 12, 6)
    ref = torch.zeros(1, 3, 16, 16)
    img = ref.clone()
    img[..., 6:, :] = 1.0  # only the strip below changes: distance 1 there, weight 160/208
    _, d_out = _dist(box=box, mode="paper")(img, ref)
    assert float(d_out) == pytest.approx(160 / (256 - 48))


def test_paper_mode_needs_one_rectangle():
    m = rect_mask([(0, 0, 4, 4), (8, 8, 12, 12)], 16)
    with pytest.raises(MGMError, match="exactly one rectangle"):
        make_distance(m, mode="paper", boxes=((0, 0, 4, 4), (8, 8, 12, 12)))


def test_soft_mask_weights_pixels():
    m = torch.zeros(4, 4)
    m[0, 0] = 0.5
    ref = torch.zeros(1, 3, 4, 4)
    img = ref.clone()
    img[..., 0, 0] = 1.0
    d_in, d_out = make_distance(m)(img, ref)
    assert float(d_in) == pytest.approx(1.0) and float(d_out) == pytest.approx(0.5 / 15.5)


def test_lpips_map_mode_with_random_backbone():
    model = load_lpips(spatial=True, random_backbone=True)
    d = _dist(64, (16, 40, 48, 56), distance="lpips", lpips_model=model)
    img = torch.rand(2, 3, 64, 64) * 2 - 1
    d_in, d_out = d(img, img[:1])
    assert d_in.shape == (2,) and float(d_in[0]) == pytest.approx(0, abs=1e-6) and float(d_in[1]) > 0
    assert float(d_out[1]) > 0


def test_lpips_paper_mode_refuses_tiny_crops():
    model = load_lpips(spatial=False, random_backbone=True)
    with pytest.raises(MGMError, match="at least 32x32"):
        _dist(64, (16, 40, 48, 56), distance="lpips", mode="paper", lpips_model=model)
    d = _dist(128, (32, 32, 96, 96), distance="lpips", mode="paper", lpips_model=model)
    img = torch.rand(2, 3, 128, 128) * 2 - 1
    d_in, d_out = d(img, img[:1])
    assert float(d_in[0]) == pytest.approx(0, abs=1e-6) and float(d_out[1]) > 0


def _offline(url, dst, hash_prefix=None, progress=True):
    import urllib.error

    raise urllib.error.URLError("[Errno -2] Name or service not known")


def test_lpips_offline_names_the_file_the_folder_and_l2(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(torch.hub, "download_url_to_file", _offline)
    with pytest.raises(MGMError) as info:
        load_lpips()
    msg = str(info.value)
    assert LPIPS_BACKBONE_FILE in msg and str(tmp_path / "hub" / "checkpoints") in msg and "--distance l2" in msg
    assert "Name or service not known" in msg and "\n" not in msg
    assert not any((tmp_path / "hub" / "checkpoints").iterdir())  # nothing half-written


def test_lpips_downloads_the_backbone_as_torchvision_does(tmp_path, monkeypatch):
    """Online: torchvision's URL and hash prefix, its progress bar, into the hub folder; then lpips loads it."""
    import torchvision

    calls = []

    def fake_download(url, dst, hash_prefix=None, progress=False):  # (torch's default is True: ask for it anyway)
        calls.append((url, dst, hash_prefix, progress))
        torch.save(torchvision.models.alexnet(weights=None).state_dict(), dst)  # stands in for the real file

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(torch.hub, "download_url_to_file", fake_download)
    (tmp_path / "hub" / "checkpoints").mkdir(parents=True)  # the folder may exist without the file
    model = load_lpips(spatial=False)
    dst = tmp_path / "hub" / "checkpoints" / LPIPS_BACKBONE_FILE
    assert calls == [(torchvision.models.AlexNet_Weights.IMAGENET1K_V1.url, str(dst), "7be5be79", True)]
    assert calls[0][0].endswith("/" + LPIPS_BACKBONE_FILE)
    img = torch.rand(2, 3, 64, 64) * 2 - 1
    assert float(model(img[:1], img[:1]).sum()) == pytest.approx(0, abs=1e-6)
    assert float(model(img[:1], img[1:]).sum()) > 0
    load_lpips()  # the file is there now: no second download
    assert len(calls) == 1


@pytest.mark.slow
def test_lpips_offline_cli_is_one_line_and_exit_2(tmp_path, monkeypatch):
    """The real download path (in this process, through mgm's command line), made to fail by an unreachable proxy:
    one line on stderr, exit 2, no run."""
    from _cli import mgm

    for k, v in dict(TORCH_HOME=str(tmp_path / "torch"), https_proxy="http://127.0.0.1:9",
                     HTTPS_PROXY="http://127.0.0.1:9", no_proxy="", NO_PROXY="").items():
        monkeypatch.setenv(k, v)
    r = mgm("discover", "--distance", "lpips", "--epochs", "1", "--out", tmp_path / "runs", "--quiet")
    assert r.exit_code == 2, r.output
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    assert LPIPS_BACKBONE_FILE in lines[0] and str(tmp_path / "torch" / "hub" / "checkpoints") in lines[0]
    assert "--distance l2" in lines[0]
    assert not (tmp_path / "runs").exists()


def test_spring_energy_known_values():
    w = torch.tensor([[0.0], [1.0], [3.0]])
    s, st = spring_energy(w, alpha=1.0, beta=1.0, sigma=1.0)
    assert float(s) == pytest.approx(0 + 1)          # steps 1 and 2 against rest 1
    assert float(st) == pytest.approx((3 - 2) ** 2)   # one stiffener of length 3 against 2
    s_closed, st_closed = spring_energy(w, 1.0, 1.0, 1.0, closed=True)
    assert float(s_closed) == pytest.approx(1 + (3 - 1) ** 2)  # plus the wrap-around step 3 -> 0
    assert float(st_closed) == pytest.approx((3 - 2) ** 2 + (1 - 2) ** 2 + (2 - 2) ** 2)


def test_springs_use_flattened_norms():
    w = torch.zeros(3, 2, 2)
    w[1] = 0.5  # step norm sqrt(4 * 0.25) = 1
    w[2] = 1.0
    s, _ = spring_energy(w, 1.0, 0.0, 1.0)
    assert float(s) == pytest.approx(0, abs=1e-9)


def test_offset_ramp():
    assert offsets_for(3, 0.4, True).tolist() == pytest.approx([0.0, 0.2, 0.4])
    assert offsets_for(3, 0.4, False).tolist() == pytest.approx([0.4] * 3)


def test_springs_at_sigma_other_than_one():
    w = torch.tensor([[0.0], [1.0], [3.0], [3.5]])
    s, st = spring_energy(w, alpha=0.3, beta=0.7, sigma=0.5)
    exp_s = 0.3 * sum((d - 0.5) ** 2 for d in (1.0, 2.0, 0.5))
    exp_st = 0.7 * sum((d - 2 * 0.5) ** 2 for d in (3.0, 2.5))
    assert float(s) == pytest.approx(exp_s) and float(st) == pytest.approx(exp_st)
    s, st = spring_energy(w, alpha=1.0, beta=1.0, sigma=2.0, closed=True)
    assert float(s) == pytest.approx(sum((d - 2) ** 2 for d in (1.0, 2.0, 0.5, 3.5)))
    assert float(st) == pytest.approx(sum((d - 4) ** 2 for d in (3.0, 2.5, 3.0, 2.5)))


@pytest.mark.parametrize("mode", ["map", "paper"])
def test_lpips_modes_load_their_own_network(monkeypatch, mode):
    """Without a given model the distance loads LPIPS itself: spatial for map mode, one value per crop for paper."""
    import mgm_analysis.losses as L

    real, asked = L.load_lpips, []

    def random_lpips(spatial=True, random_backbone=False):  # no AlexNet weights needed
        asked.append(spatial)
        torch.manual_seed(0)
        return real(spatial=spatial, random_backbone=True)

    monkeypatch.setattr(L, "load_lpips", random_lpips)
    box = (32, 40, 96, 92)
    mask = rect_mask([box], 128)
    d = make_distance(mask, "lpips", mode, (box,))
    assert asked == [mode == "map"] and d.lpips.spatial == (mode == "map")
    g = torch.Generator().manual_seed(1)
    ref = torch.rand(1, 3, 128, 128, generator=g) * 2 - 1
    img = (ref + 0.3 * torch.randn(2, 3, 128, 128, generator=g)).clamp(-1, 1)
    d_in, d_out = d(img, ref)
    m = torch.as_tensor(mask)
    with torch.no_grad():
        if mode == "map":
            dmap = d.lpips(img, ref.expand_as(img), normalize=False)[:, 0]  # [B, H, W] at full size
            assert dmap.shape[-2:] == (128, 128)
            exp_in = (dmap * m).sum((1, 2)) / m.sum()
            exp_out = (dmap * (1 - m)).sum((1, 2)) / (1 - m).sum()
        else:
            def lp(y0, y1, x0, x1):
                return d.lpips(img[..., y0:y1, x0:x1], ref.expand_as(img)[..., y0:y1, x0:x1]).reshape(-1)

            exp_in = lp(40, 92, 32, 96)
            strips = [((0, 40, 0, 128), 40 * 128), ((92, 128, 0, 128), 36 * 128), ((40, 92, 0, 32), 52 * 32),
                      ((40, 92, 96, 128), 52 * 32)]
            area = sum(a for _, a in strips)
            exp_out = sum(lp(*s) * a / area for s, a in strips)
    assert torch.allclose(d_in, exp_in, rtol=1e-5) and torch.allclose(d_out, exp_out, rtol=1e-5)
    assert float(d_in.min()) > 0 and float(d_out.min()) > 0


def test_springs_on_wide_latents_and_coincident_neighbours():
    g = torch.Generator().manual_seed(3)
    w = torch.randn(5, 2, 3, generator=g)  # 5 latents of 6 numbers: norms over all of them, rows not mixed
    flat = w.reshape(5, -1)
    for closed in (False, True):
        pairs1 = [(i, (i + 1) % 5) for i in range(5 if closed else 4)]
        pairs2 = [(i, (i + 2) % 5) for i in range(5 if closed else 3)]
        s, st = spring_energy(w, 0.3, 0.2, 0.7, closed)
        assert float(s) == pytest.approx(0.3 * sum((float((flat[j] - flat[i]).norm()) - 0.7) ** 2 for i, j in pairs1),
                                         rel=1e-5)
        assert float(st) == pytest.approx(0.2 * sum((float((flat[j] - flat[i]).norm()) - 1.4) ** 2
                                                    for i, j in pairs2), rel=1e-5)
    same = torch.zeros(3, 4, requires_grad=True)  # the first epoch: every latent at w*
    s, st = spring_energy(same, 1.0, 1.0, 0.5)
    (s + st).backward()
    assert float(s) == pytest.approx(2 * 0.25, rel=1e-4) and torch.isfinite(same.grad).all()


# ---------------------------------------------------------- edges and messages (found by mutation testing)
@pytest.mark.parametrize("box", [(0, 4, 8, 12), (8, 4, 16, 12), (0, 0, 16, 6)])
def test_paper_mode_box_on_a_side_edge(box):
    """A box touching the left/right edge (or spanning the width) has no strip there: no empty crop, no NaN."""
    g = torch.Generator().manual_seed(5)
    ref = torch.rand(1, 3, 16, 16, generator=g) * 2 - 1
    img = torch.rand(2, 3, 16, 16, generator=g) * 2 - 1
    d_in, d_out = _dist(box=box, mode="paper")(img, ref)
    x0, y0, x1, y1 = box
    inside = torch.zeros(16, 16, dtype=torch.bool)
    inside[y0:y1, x0:x1] = True
    sq = (img - ref).square().mean(1)  # [B, H, W]
    assert torch.allclose(d_in, sq[:, inside].mean(1), atol=1e-6)
    assert torch.allclose(d_out, sq[:, ~inside].mean(1), atol=1e-6)


def test_masked_distance_defaults_are_l2_map():
    from mgm_analysis.losses import MaskedDistance

    m = torch.zeros(6, 6)
    m[1:4, 2:6] = 1.0
    m[5, 0] = 0.25
    g = torch.Generator().manual_seed(2)
    ref, img = torch.rand(1, 3, 6, 6, generator=g), torch.rand(2, 3, 6, 6, generator=g)
    d_in, d_out = MaskedDistance(m)(img, ref)
    for b in range(2):
        num_in = num_out = 0.0
        for y in range(6):
            for x in range(6):
                e = float(((img[b, :, y, x] - ref[0, :, y, x]) ** 2).mean())
                num_in += float(m[y, x]) * e
                num_out += (1 - float(m[y, x])) * e
        assert float(d_in[b]) == pytest.approx(num_in / float(m.sum()), rel=1e-5)
        assert float(d_out[b]) == pytest.approx(num_out / float((1 - m).sum()), rel=1e-5)


def test_bad_masks_images_and_options_say_what_and_what_to_do():
    with pytest.raises(ValueError, match=r"^mask must be \[H, W\] square, got \[4, 6\]$"):
        make_distance(torch.zeros(4, 6))
    with pytest.raises(ValueError, match=r"^mask must be \[H, W\] square, got \[4, 4, 4\]$"):
        make_distance(torch.zeros(4, 4, 4))
    with pytest.raises(MGMError, match=r"^unknown distance 'l1'; use l2 or lpips$"):
        make_distance(torch.zeros(4, 4), distance="l1")
    with pytest.raises(MGMError, match=r"^unknown mask mode 'crop'; use map or paper$"):
        make_distance(torch.zeros(4, 4), mode="crop")
    with pytest.raises(MGMError, match=r"^the paper-faithful mask mode needs exactly one rectangle \(rect:x0,y0,x1,y1 "
                                       r"or a one-box preset\); use --mask-mode map for other regions$"):
        make_distance(torch.zeros(4, 4), mode="paper")
    with pytest.raises(ValueError, match=r"^expected images \[B, C, 16, 16\], got \[1, 3, 8, 8\]$"):
        _dist()(torch.zeros(1, 3, 8, 8), torch.zeros(1, 3, 8, 8))
    with pytest.raises(ValueError, match=r"^expected images \[B, C, 16, 16\], got \[3, 16, 16\]$"):
        _dist()(torch.zeros(3, 16, 16), torch.zeros(1, 3, 16, 16))  # one image without its batch axis


@pytest.mark.parametrize("box, crop", [((32, 32, 100, 96), "28x64"), ((32, 32, 96, 100), "128x28")])
def test_lpips_paper_mode_names_the_small_crop(box, crop):
    """The first crop under 32 px (the box, then above, below, left, right) and the image size."""
    with pytest.raises(MGMError, match=rf"^LPIPS \(AlexNet\) needs crops of at least 32x32 pixels but the "
                                       rf"paper-faithful mode makes a {crop} crop at 128x128; use --mask-mode map "
                                       rf"or --distance l2$"):
        _dist(128, box, distance="lpips", mode="paper", lpips_model=torch.nn.Identity())  # never a download


def test_lpips_without_the_package_names_the_extra(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "lpips", None)  # `import lpips` raises ImportError
    with pytest.raises(MGMError, match=r"^--distance lpips needs the lpips extra: pip install "
                                       r"'mgm-analysis\[lpips\]' \(or use --distance l2\)$"):
        load_lpips(random_backbone=True)


def test_load_lpips_is_frozen_and_quiet(capsys):
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = load_lpips(random_backbone=True)
    assert capsys.readouterr().out == "" and caught == []  # no banner, no torchvision deprecation notes
    assert not model.training and not any(p.requires_grad for p in model.parameters())
    assert model.spatial  # by default a distance map (the map mode)


def test_lpips_download_failure_reasons_are_one_line(tmp_path, monkeypatch):
    """The URLError's reason (not its '<urlopen error ...>' wrapper); other errors (a bad hash) by their text."""
    import urllib.error

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    folder = tmp_path / "hub" / "checkpoints"
    monkeypatch.setattr(torch.hub, "download_url_to_file", _offline)
    with pytest.raises(MGMError) as info:
        load_lpips()
    assert "failed ([Errno -2] Name or service not known); copy the file there" in str(info.value)
    assert "urlopen" not in str(info.value)

    def bad_hash(url, dst, hash_prefix=None, progress=True):
        raise RuntimeError(f'invalid hash value (expected "{hash_prefix}",\n  got "0123abcd")')

    monkeypatch.setattr(torch.hub, "download_url_to_file", bad_hash)
    with pytest.raises(MGMError, match=rf'^LPIPS needs the AlexNet weights {LPIPS_BACKBONE_FILE} in '
                                       rf'.+ failed \(invalid hash value \(expected "7be5be79", got "0123abcd"\)\); '
                                       r"copy the file there or use --distance l2$") as info:
        load_lpips()
    assert str(folder) in str(info.value) and "\n" not in str(info.value)

    def refused(url, dst, hash_prefix=None, progress=True):
        raise urllib.error.URLError(ConnectionRefusedError(111, "Connection refused"))

    monkeypatch.setattr(torch.hub, "download_url_to_file", refused)
    with pytest.raises(MGMError, match=r"failed \(\[Errno 111\] Connection refused\);"):
        load_lpips()
    assert not any(folder.iterdir())
