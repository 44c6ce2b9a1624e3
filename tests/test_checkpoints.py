"""Loading checkpoints of both formats, `mgm info`, and refusing bad or malicious files."""

import argparse
import collections
import io
import pickle
import struct
import sys
import types
import zipfile
from pathlib import Path

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


def test_truncation_cutoff_as_nvidia(tiny):
    """Only the first `cutoff` layers move towards w_avg (a per-layer loop here); ψ > 1 extrapolates as NVIDIA's lerp."""
    z = torch.randn(3, tiny.z_dim, generator=torch.Generator().manual_seed(5))
    w = tiny.mapping(z)
    for psi, cutoff in ((0.6, 2), (0.6, 0), (0.6, tiny.num_ws + 3), (1.5, 4)):
        ws = tiny.mapping(z, psi, truncation_cutoff=cutoff)
        assert ws.shape == (3, tiny.num_ws, tiny.w_dim)
        for i in range(tiny.num_ws):
            want = tiny.w_avg + psi * (w - tiny.w_avg) if i < cutoff else w
            assert torch.allclose(ws[:, i], want, atol=1e-6), (psi, cutoff, i)
        assert torch.equal(tiny.broadcast(ws), ws)
    assert torch.allclose(tiny.mapping(z, 1.5), tiny.w_avg + 1.5 * (w - tiny.w_avg), atol=1e-6)
    with pytest.raises(ValueError, match="truncation_cutoff must be an integer >= 0"):
        tiny.mapping(z, 0.5, truncation_cutoff=-1)


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
# Real pickles written by NVIDIA's code (tests/fixtures/nvidia, see make.py there); their outputs, settings and
# refusals are tested in tests/test_nvidia_fixtures.py.
NVIDIA = Path(__file__).resolve().parent / "fixtures" / "nvidia"


def test_nvidia_pickle_never_runs_its_module_source(tmp_path, monkeypatch):
    """NVIDIA's loader exec()s each class's stored module source; put code there and check that ours never runs it."""
    data = (NVIDIA / "ada_fp32.pkl").read_bytes()
    placeholder = b"mgm-fixture: source of training.networks not embedded"
    code = b"open('pwned', 'w').write('x')"
    assert placeholder in data
    evil = data.replace(placeholder, code + b"#" * (len(placeholder) - len(code)))  # same length: frames stay valid
    (tmp_path / "net.pkl").write_bytes(evil)
    monkeypatch.chdir(tmp_path)
    G = load_generator(tmp_path / "net.pkl")
    assert G.info.format == "nvidia-pickle" and G.resolution == 16
    assert not (tmp_path / "pwned").exists()


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


# ------------------------------------- sizes claimed by a file, checksums
class _StorageMarker:
    pass


class _TensorRef:
    """Pickles as torch does a tensor: _rebuild_tensor_v2(storage, offset, size, stride, ...)."""

    def __init__(self, storage, size, stride):
        self.storage, self.size, self.stride = storage, size, stride

    def __reduce__(self):
        return (torch._utils._rebuild_tensor_v2,
                (self.storage, 0, self.size, self.stride, False, collections.OrderedDict()))


def _tensor_pickle(obj, numel, key="0", legacy=False) -> bytes:
    """A torch data pickle whose one storage claims ``numel`` float32 elements (legacy ids add view metadata)."""
    pid = ("storage", torch.FloatStorage, key, "cpu", numel) + ((None,) if legacy else ())

    class P(pickle.Pickler):
        def persistent_id(self, o):
            return pid if isinstance(o, _StorageMarker) else None

    buf = io.BytesIO()
    P(buf, protocol=2).dump(obj)
    return buf.getvalue()


def _torch_zip(path, numel, size, stride, data: bytes):
    """A torch.save zip file (entries as torch writes them) holding {'g_ema': {'style.1.weight': tensor}}."""
    obj = {"g_ema": {"style.1.weight": _TensorRef(_StorageMarker(), size, stride)}}
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        z.writestr("archive/data.pkl", _tensor_pickle(obj, numel))
        z.writestr("archive/byteorder", "little")
        z.writestr("archive/data/0", data)
        z.writestr("archive/version", "3\n")
    return path


def test_huge_storage_claim_refused_before_allocation(tmp_path):
    values = torch.arange(4, dtype=torch.float32)
    ok = _torch_zip(tmp_path / "ok.pt", 4, (4,), (1,), values.numpy().tobytes())
    assert torch.equal(torch.load(ok, weights_only=True)["g_ema"]["style.1.weight"], values)  # a real torch file
    huge = _torch_zip(tmp_path / "huge.pt", 10**14, (10**7, 10**7), (10**7, 1), values.numpy().tobytes())
    assert huge.stat().st_size < 2048
    with pytest.raises(CheckpointError, match=r"storage 0 claims 100,000,000,000,000 × 4 bytes .* holds 16 bytes"):
        load_generator(huge)
    _assert_one_line_error(_mgm("info", huge), "claims", "nothing was allocated")


def test_zip_entry_larger_than_the_file_is_refused(tmp_path):
    path = _torch_zip(tmp_path / "g.pt", 4, (4,), (1,), bytes(16))
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as z:
        info = z.getinfo("archive/data/0")
    # central directory record of archive/data/0: compressed and uncompressed sizes at offsets 20 and 24
    rec = data.find(b"PK\x01\x02", 0)
    while data[rec + 46:rec + 46 + len(info.filename)] != info.filename.encode():
        rec = data.find(b"PK\x01\x02", rec + 4)
    struct.pack_into("<II", data, rec + 20, 10**9, 10**9)
    (tmp_path / "lie.pt").write_bytes(bytes(data))
    _assert_one_line_error(_mgm("info", tmp_path / "lie.pt"), "archive/data/0", "more than the whole file")


def test_flipped_byte_inside_a_tensor_fails_the_checksum(tiny, tmp_path):
    path = tmp_path / "g.pt"
    save_checkpoint(tiny, path)
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as z:
        info = next(i for i in z.infolist() if "/data/" in i.filename and i.file_size >= 64)
    name_len, extra_len = struct.unpack_from("<HH", data, info.header_offset + 26)
    start = info.header_offset + 30 + name_len + extra_len
    data[start + 17] ^= 0x10  # one bit of one float of one tensor
    (tmp_path / "flipped.pt").write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=f"zip entry '{info.filename}' fails its checksum"):
        load_generator(tmp_path / "flipped.pt")
    _assert_one_line_error(_mgm("info", tmp_path / "flipped.pt"), "fails its checksum", "copy it again")


def _legacy_storage_bytes(numel: int, values: bytes, count: int | None = None) -> bytes:
    """torch.save(storage, _use_new_zipfile_serialization=False) as NVIDIA's pickles embed it per tensor."""
    out = io.BytesIO()
    for head in (0x1950A86A20F9469CFC6C, 1001, dict(protocol_version=1001, little_endian=True,
                                                    type_sizes=dict(short=2, int=4, long=4))):
        pickle.dump(head, out, protocol=2)
    out.write(_tensor_pickle(_StorageMarker(), numel, key="k", legacy=True))
    pickle.dump(["k"], out, protocol=2)
    out.write(struct.pack("<q", numel if count is None else count) + values)
    return out.getvalue()


class _BytesStorage:
    def __init__(self, blob):
        self.blob = blob

    def __reduce__(self):
        return (torch.storage._load_from_bytes, (self.blob,))


def test_nvidia_pickle_storage_claim_refused(tmp_path):
    values = torch.arange(4, dtype=torch.float32)
    good = pickle.dumps({"G_ema": _TensorRef(_BytesStorage(_legacy_storage_bytes(4, values.numpy().tobytes())), (4,), (1,))})
    assert torch.equal(pickle.loads(good)["G_ema"], values)  # the layout is torch's own
    (tmp_path / "good.pkl").write_bytes(good)
    _assert_one_line_error(_mgm("info", tmp_path / "good.pkl"), "G_ema is a Tensor")  # read through, then refused
    for numel, count in ((10**10, None), (10**10, 4)):  # header and data count both lie / only the pickle lies
        blob = _legacy_storage_bytes(numel, values.numpy().tobytes(), count)
        (tmp_path / "huge.pkl").write_bytes(pickle.dumps({"G_ema": _TensorRef(_BytesStorage(blob), (10**10,), (1,))}))
        with pytest.raises(CheckpointError, match=r"huge.pkl: a tensor in the pickle: tensor storage k claims "
                                                  r"10,000,000,000 × 4 bytes"):
            load_generator(tmp_path / "huge.pkl")


def test_legacy_format_pt_loads_and_its_claims_are_checked(tiny, tmp_path):
    sd = {k: v for k, v in tiny.state_dict().items() if k != "w_avg"}
    torch.save({"g_ema": sd, "latent_avg": tiny.w_avg}, tmp_path / "old.pt", _use_new_zipfile_serialization=False)
    assert torch.equal(_images(load_generator(tmp_path / "old.pt")), _images(tiny))
    (tmp_path / "huge.pt").write_bytes(_legacy_storage_bytes(10**10, bytes(16)))
    _assert_one_line_error(_mgm("info", tmp_path / "huge.pt"), "claims 10,000,000,000 × 4 bytes", "holds 16 bytes")


@pytest.mark.parametrize("opcode, protocol", [(b"\x8e", 4), (b"\x96", 5)])  # BINBYTES8, BYTEARRAY8
def test_pickle_length_prefix_beyond_the_file_refused(tmp_path, opcode, protocol):
    """The C unpickler allocates a bytes8/bytearray8 argument at its claimed length before reading it."""
    path = tmp_path / "claim.pkl"
    path.write_bytes(bytes([0x80, protocol]) + opcode + struct.pack("<Q", 10**12) + b"x" * 100)
    with pytest.raises(CheckpointError, match="expected 1000000000000 bytes in a (bytes8|bytearray8), but only 100 remain"):
        load_generator(path)
    _assert_one_line_error(_mgm("info", path), "claims more bytes than the file holds")


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
