"""Reading StyleGAN2 checkpoints safely.

Two formats arrive from researchers:

* rosinality/stylegan2-pytorch files (the paper's code uses them): a
  ``torch.save``d dict ``{'g_ema': state_dict, 'latent_avg'?: [w_dim]}``, a bare
  generator state dict, or a training checkpoint that also holds ``g``, ``d``,
  optimiser state and an ``argparse.Namespace`` under ``args``.  They load with
  ``torch.load(weights_only=True)``, so no code in them can run.
* NVIDIA stylegan2-ada-pytorch / stylegan3 network pickles (``G_ema``).  Their
  classes carry the source of ``training/networks.py`` and normally ``exec`` it
  on load.  :class:`_NetworkUnpickler` allows only tensors, containers and a
  stand-in for the persistence hook that keeps the metadata and never runs the
  embedded source; everything else is refused before it is constructed.

Both are mapped onto :class:`~mgm_analysis.generators.stylegan2.StyleGAN2`
(StyleGAN3 networks onto :class:`~mgm_analysis.generators.stylegan3.StyleGAN3`).
An NVIDIA StyleGAN2's synthesis settings (``conv_clamp``, fp16 blocks,
architecture) are read where its modules hold them, else from the saved kwargs
of either repository, else from that repository's defaults
(:func:`_nvidia_settings`).  Before anything is unpickled or allocated,
:mod:`._safe_torch` checks every size a file claims against the bytes it holds
and verifies zip checksums.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import pickle
import re
import zipfile
from collections import OrderedDict
from pathlib import Path

import torch

from ..errors import CheckpointError, UnsafePickleError
from . import _numpy_pickle as _np_pickle
from ._safe_torch import check_pickle_lengths, check_torch_file
from .base import GeneratorInfo
from .stylegan2 import StyleGAN2
from .stylegan3 import StyleGAN3, is_stylegan3
from .stylegan3 import from_nvidia as _stylegan3_from_nvidia

__all__ = ["load_checkpoint", "save_checkpoint", "sha256_file", "state_dict_config"]


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def save_checkpoint(G: StyleGAN2, path: str | Path, extra: dict | None = None) -> None:
    """Write ``G`` in rosinality's layout plus its constructor config (loads with weights_only=True)."""
    sd = {k: v.detach().cpu().clone() for k, v in G.state_dict().items() if k != "w_avg"}
    obj = {"g_ema": sd, "latent_avg": G.w_avg.detach().cpu().clone(), "mgm_config": G.config()}
    if extra:
        obj["mgm_extra"] = extra
    tmp = Path(str(path) + ".tmp")
    torch.save(obj, tmp)
    tmp.replace(path)


# --------------------------------------------------------------------- helpers
def state_dict_config(sd: dict[str, torch.Tensor]) -> dict:
    """Infer StyleGAN2 constructor arguments from a rosinality-layout state dict."""
    if "style.1.weight" not in sd or "conv1.conv.weight" not in sd:
        first = next(iter(sd), None)
        raise KeyError(f"not a StyleGAN2 generator state dict (no 'style.1.weight' / 'conv1.conv.weight'; first key {first!r})")
    n_mlp = 0
    while f"style.{n_mlp + 1}.weight" in sd:
        n_mlp += 1
    w_dim, z_dim = sd["style.1.weight"].shape
    w_dim = int(sd[f"style.{n_mlp}.weight"].shape[0])
    n_blocks = 0
    while f"to_rgbs.{n_blocks}.conv.weight" in sd:
        n_blocks += 1
    resolution = 4 * 2**n_blocks
    channels = {4: int(sd["conv1.conv.weight"].shape[1])}
    for j in range(n_blocks):
        channels[8 * 2**j] = int(sd[f"convs.{2 * j}.conv.weight"].shape[1])
    return dict(resolution=resolution, w_dim=w_dim, z_dim=int(z_dim), n_mlp=n_mlp, channels=channels)


def _fill_model(G: StyleGAN2, sd: dict[str, torch.Tensor], path: Path) -> list[str]:
    """Copy ``sd`` into ``G``; name the first missing, unexpected or mis-shaped key. Returns notes."""
    own = G.state_dict()
    notes = []
    for key, value in sd.items():
        if key not in own:
            raise CheckpointError(f"{path}: unexpected key {key!r} for a StyleGAN2 generator "
                                  f"(resolution {G.resolution}); is this a generator checkpoint?")
        if tuple(value.shape) != tuple(own[key].shape):
            raise CheckpointError(f"{path}: key {key!r} has shape {list(value.shape)} but the generator expects "
                                  f"{list(own[key].shape)}; the checkpoint does not match its own config")
    for key in own:
        if key in sd or key == "w_avg":
            continue
        if key.endswith(".kernel"):
            continue  # fixed blur kernels, rebuilt by the model
        if key.startswith("noises."):
            notes.append("noise buffers missing: seeded constant noise used")
            continue
        raise CheckpointError(f"{path}: key {key!r} (shape {list(own[key].shape)}) is missing from the checkpoint")
    with torch.no_grad():
        for key, value in sd.items():
            own[key].copy_(value.to(own[key].dtype))
    return sorted(set(notes))


def _fail_load(path: Path, exc: Exception) -> CheckpointError:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if "Weights only load failed" in str(exc) or "Unsupported global" in str(exc):
        m = re.search(r"GLOBAL ([\w\.]+)", str(exc))
        what = m.group(1) if m else "a non-tensor object"
        return UnsafePickleError(f"{path}: refused to load: the file asks for {what}, which a weights-only load does not "
                                 "allow (it could run code); re-save the generator's state dict with torch.save")
    if isinstance(exc, (EOFError, zipfile.BadZipFile)) or "failed finding central directory" in text or \
            "unexpected EOF" in text.lower() or "failed reading" in text:
        return CheckpointError(f"{path}: the file is truncated or corrupt ({text}); download or copy it again")
    return CheckpointError(f"{path}: not a PyTorch checkpoint or network pickle ({text})")


# ------------------------------------------------------------- rosinality .pt
def _load_rosinality(path: Path) -> tuple[dict, str, torch.Tensor | None, dict | None]:
    check_torch_file(path)  # before torch.load allocates what the header claims
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for bad files
        raise _fail_load(path, exc) from None
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path}: holds a {type(obj).__name__}, not a checkpoint dict; expected "
                              "{'g_ema': state_dict, ...} or a generator state dict")
    latent_avg = obj.get("latent_avg")
    if "g_ema" in obj:
        sd, fmt = obj["g_ema"], "rosinality-training" if "args" in obj or "g" in obj else "rosinality"
    elif "style.1.weight" in obj:
        sd, fmt = obj, "rosinality-state-dict"
    else:
        keys = ", ".join(list(map(str, obj))[:5])
        raise CheckpointError(f"{path}: no generator found (keys: {keys}); expected 'g_ema' or a state dict with "
                              "'style.1.weight'")
    if not isinstance(sd, dict):
        raise CheckpointError(f"{path}: 'g_ema' is a {type(sd).__name__}, not a state dict")
    sd = {k: v for k, v in sd.items() if isinstance(v, torch.Tensor)}
    check_views(sd, path)
    return sd, fmt, latent_avg, obj.get("mgm_config")


def check_views(tensors: dict, path) -> None:
    """Every tensor must read only elements its storage holds, each once: a view that claims more elements than
    its storage (zero or overlapping strides, e.g. 10⁷ × 10⁷ over one number) is refused before anything is built
    from its shape."""
    for key, t in tensors.items():
        if not isinstance(t, torch.Tensor):
            continue
        held = t.untyped_storage().nbytes() // max(1, t.element_size())
        if t.numel() > held:
            raise CheckpointError(f"{path}: tensor {key} claims shape {list(t.shape)} ({t.numel():,} elements) over a "
                                  f"storage of {held:,}; the file is corrupt or crafted")


# ------------------------------------------------------------- NVIDIA pickles
class _EasyDict(dict):
    """Stand-in for ``dnnlib.util.EasyDict``."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setstate__(self, state):
        self.update(state)


class _Persistent:
    """What a ``persistent_class`` object becomes: its metadata, never its code."""

    def __init__(self, meta: dict):
        self.class_name = meta.get("class_name")
        self.state = meta.get("state") or {}
        self.version = meta.get("version")


def _reconstruct_stub(meta):
    if not isinstance(meta, dict) or meta.get("type") != "class":
        raise UnsafePickleError("persistent object of an unknown kind")
    return _Persistent(_np_pickle.unwrap(meta))  # numpy stand-ins in the stored attributes -> plain arrays


def _rebuild_parameter(data, requires_grad, backward_hooks, *state):
    return data


def _load_from_bytes(b):
    if not isinstance(b, bytes):
        raise UnsafePickleError(f"a tensor's storage is a {type(b).__name__}, not bytes")
    check_torch_file(b, "a tensor in the pickle")  # sizes claimed by its header vs the bytes present
    return torch.load(io.BytesIO(b), map_location="cpu", weights_only=True)


class _NetworkUnpickler(pickle.Unpickler):
    _ALLOWED = {
        ("torch_utils.persistence", "_reconstruct_persistent_obj"): lambda: _reconstruct_stub,
        ("collections", "OrderedDict"): lambda: OrderedDict,
        ("builtins", "set"): lambda: set,
        ("builtins", "frozenset"): lambda: frozenset,
        ("torch._utils", "_rebuild_tensor_v2"): lambda: torch._utils._rebuild_tensor_v2,
        ("torch._utils", "_rebuild_parameter"): lambda: _rebuild_parameter,
        ("torch._utils", "_rebuild_parameter_with_state"): lambda: _rebuild_parameter,
        ("torch.storage", "_load_from_bytes"): lambda: _load_from_bytes,
        ("dnnlib.util", "EasyDict"): lambda: _EasyDict,
        # numpy: plain numeric arrays and scalars only, through validating stand-ins (see _numpy_pickle);
        # numpy.core is numpy 1.x's name of numpy._core
        ("numpy.core.multiarray", "scalar"): lambda: _np_pickle.scalar,
        ("numpy._core.multiarray", "scalar"): lambda: _np_pickle.scalar,
        ("numpy", "dtype"): lambda: _np_pickle.SafeDtype,
        ("numpy.core.multiarray", "_reconstruct"): lambda: _np_pickle.reconstruct,
        ("numpy._core.multiarray", "_reconstruct"): lambda: _np_pickle.reconstruct,
        ("numpy", "ndarray"): lambda: _np_pickle.NDARRAY,
    }

    def __init__(self, file, path):
        super().__init__(file)
        self.path = path

    def find_class(self, module, name):
        if module.startswith("dnnlib.tflib"):
            raise CheckpointError(f"{self.path}: an old TensorFlow StyleGAN2 pickle is not supported; convert it to a "
                                  "PyTorch pickle with NVIDIA's stylegan2-ada-pytorch legacy.py, or to rosinality's .pt")
        factory = self._ALLOWED.get((module, name))
        if factory is None:
            raise UnsafePickleError(f"{self.path}: refused to load: the pickle asks for {module}.{name}, which is not a "
                                    "tensor or container (it could run code); nothing was executed")
        return factory()

    def persistent_load(self, pid):
        raise UnsafePickleError(f"{self.path}: refused to load: unexpected persistent id in a network pickle")


def _flatten(obj: _Persistent, prefix: str = "") -> dict[str, torch.Tensor]:
    out = {}
    if not isinstance(obj, _Persistent):  # a missing submodule (or one stored without state) holds no tensors
        return out
    for group in ("_parameters", "_buffers"):
        for k, v in (obj.state.get(group) or {}).items():
            if isinstance(v, torch.Tensor):
                out[prefix + k] = v
    for k, sub in (obj.state.get("_modules") or {}).items():
        if isinstance(sub, _Persistent):
            out.update(_flatten(sub, f"{prefix}{k}."))
    return out


#: what each repository's StyleGAN2 Generator uses when a setting was not passed (and so was never saved)
_REPO_DEFAULTS = {
    "NVlabs/stylegan2-ada-pytorch training/networks.py": dict(conv_clamp=None, num_fp16_res=0, architecture="skip"),
    "NVlabs/stylegan3 training/networks_stylegan2.py": dict(conv_clamp=256, num_fp16_res=4, architecture="skip"),
}
_GENERATOR_OWN_KWARGS = {"z_dim", "c_dim", "w_dim", "img_resolution", "img_channels", "mapping_kwargs"}


def _submodules(obj) -> dict:
    return {k: v for k, v in ((obj.state.get("_modules") or {}) if isinstance(obj, _Persistent) else {}).items()
            if isinstance(v, _Persistent)}


def _nvidia_settings(path: Path, G_ema: _Persistent) -> dict:
    """conv_clamp, fp16 blocks and architecture of an NVIDIA StyleGAN2 generator, and where each came from.

    What NVIDIA's forward pass uses is what its modules hold: each
    SynthesisLayer/ToRGBLayer's ``conv_clamp``, each SynthesisBlock's
    ``use_fp16`` and ``architecture``. Only when a module lacks the attribute do
    the saved constructor kwargs count (stylegan2-ada-pytorch keeps them under
    ``synthesis_kwargs``, stylegan3's networks_stylegan2 at the top level), then
    the repository's default for a kwarg that was never passed and so never saved.
    """
    kwargs = dict(G_ema.state.get("_init_kwargs") or {})
    syn = _submodules(G_ema).get("synthesis")
    blocks = {int(k[1:]): b for k, b in _submodules(syn).items() if re.fullmatch(r"b\d+", k)}
    # stylegan3's SynthesisNetwork stores num_fp16_res and its blocks fused_modconv_default; the ada repo's do not
    sg3 = (isinstance(syn, _Persistent) and "num_fp16_res" in syn.state) or \
        any("fused_modconv_default" in b.state for b in blocks.values())
    repo = list(_REPO_DEFAULTS)[1 if sg3 else 0]
    if "synthesis_kwargs" in kwargs:
        saved = dict(kwargs["synthesis_kwargs"] or {})
    else:
        saved = {k: v for k, v in kwargs.items() if k not in _GENERATOR_OWN_KWARGS}
    defaults = _REPO_DEFAULTS[repo]

    def fallback(key):
        if key in saved:
            return saved[key], "saved kwargs"
        return defaults[key], "default, never saved"

    layers = {f"b{r}.{n}": m for r, b in blocks.items() for n, m in _submodules(b).items()
              if m.class_name in ("SynthesisLayer", "ToRGBLayer") and "conv_clamp" in m.state}
    clamps = {m.state["conv_clamp"] for m in layers.values()}
    if len(clamps) > 1:
        found = ", ".join(f"{n}: {m.state['conv_clamp']}" for n, m in list(layers.items())[:4])
        raise CheckpointError(f"{path}: layers have different conv_clamp values ({found}, ...); only one clamp for "
                              "all layers is supported")
    conv_clamp, clamp_from = (clamps.pop(), "layer attributes") if clamps else fallback("conv_clamp")
    archs = {r: b.state["architecture"] for r, b in blocks.items() if "architecture" in b.state}
    for r, arch in sorted(archs.items()):
        if arch != "skip":
            raise CheckpointError(f"{path}: synthesis architecture {arch!r} (block synthesis.b{r}) is not supported; "
                                  "only 'skip', the StyleGAN2 generator's default")
    if not archs and fallback("architecture")[0] != "skip":
        raise CheckpointError(f"{path}: synthesis architecture {fallback('architecture')[0]!r} (from the "
                              f"{fallback('architecture')[1]}) is not supported; only 'skip', the StyleGAN2 "
                              "generator's default")
    num_fp16_res = syn.state.get("num_fp16_res") if isinstance(syn, _Persistent) else None
    fp16_from = "synthesis attribute"
    if num_fp16_res is None:
        num_fp16_res, fp16_from = fallback("num_fp16_res")
    if blocks and all("use_fp16" in b.state for b in blocks.values()):
        fp16 = sorted(r for r, b in blocks.items() if b.state["use_fp16"])
    else:  # NVIDIA's rule: fp16 for the num_fp16_res highest resolutions, never below 8
        top = max(blocks) if blocks else 4
        fp16_res = max(2 ** (int(top).bit_length() - int(num_fp16_res or 0)), 8)
        fp16 = sorted(r for r in blocks if r >= fp16_res)
    for key, flt in _flatten(syn).items():
        if key.endswith("resample_filter") and not torch.allclose(flt.float(), _RESAMPLE_FILTER, atol=1e-7):
            raise CheckpointError(f"{path}: synthesis.{key} is not the [1,3,3,1] low-pass filter; other resampling "
                                  "filters are not supported")
    return dict(source=repo, conv_clamp=conv_clamp, conv_clamp_from=clamp_from, num_fp16_res=num_fp16_res,
                num_fp16_res_from=fp16_from, fp16_layers=" ".join(f"b{r}" for r in fp16) or "none")


_RESAMPLE_FILTER = torch.outer(torch.tensor([1.0, 3, 3, 1]), torch.tensor([1.0, 3, 3, 1])) / 64


def _nvidia_to_rosinality(path: Path, G_ema: _Persistent) -> tuple[dict, dict, torch.Tensor, dict]:
    if not isinstance(G_ema, _Persistent) or G_ema.class_name != "Generator":
        what = getattr(G_ema, "class_name", type(G_ema).__name__)
        raise CheckpointError(f"{path}: G_ema is a {what}, not a StyleGAN2 Generator")
    kwargs = dict(G_ema.state.get("_init_kwargs") or {})
    map_kwargs = dict(kwargs.get("mapping_kwargs") or {})
    if int(kwargs.get("c_dim", 0) or 0) > 0:
        raise CheckpointError(f"{path}: conditional generators (c_dim={kwargs['c_dim']}) are not supported; "
                              "use an unconditional StyleGAN2")
    if int(kwargs.get("img_channels", 3) or 3) != 3:
        raise CheckpointError(f"{path}: img_channels={kwargs['img_channels']} is not supported; only RGB generators")
    flat = _flatten(G_ema)
    if any(k.startswith("synthesis.input.") or re.match(r"synthesis\.L\d+_", k) for k in flat):
        raise CheckpointError(f"{path}: a StyleGAN3 (alias-free) synthesis network without its Fourier input "
                              "(synthesis.input.freqs); the pickle is incomplete, export it again")
    settings = _nvidia_settings(path, G_ema)
    sd: dict[str, torch.Tensor] = {}
    n_fc = 0
    while f"mapping.fc{n_fc}.weight" in flat:
        sd[f"style.{n_fc + 1}.weight"] = flat[f"mapping.fc{n_fc}.weight"]
        sd[f"style.{n_fc + 1}.bias"] = flat[f"mapping.fc{n_fc}.bias"]
        n_fc += 1
    if n_fc == 0 or "synthesis.b4.const" not in flat:
        raise CheckpointError(f"{path}: G_ema has no mapping.fc0 or synthesis.b4.const; not a StyleGAN2 generator")
    if any(k.startswith("mapping.embed") for k in flat):
        raise CheckpointError(f"{path}: conditional generators (mapping.embed) are not supported")
    sd["input.input"] = flat["synthesis.b4.const"][None]
    res_list = sorted(int(m.group(1)) for k in flat if (m := re.match(r"synthesis\.b(\d+)\.torgb\.weight$", k)))
    names = {"b4.conv1": "conv1", "b4.torgb": "to_rgb1"}
    noise_names = {"b4.conv1": 0}
    for j, r in enumerate(res_list[1:]):
        names[f"b{r}.conv0"], names[f"b{r}.conv1"], names[f"b{r}.torgb"] = f"convs.{2 * j}", f"convs.{2 * j + 1}", f"to_rgbs.{j}"
        noise_names[f"b{r}.conv0"], noise_names[f"b{r}.conv1"] = 2 * j + 1, 2 * j + 2
    for src, dst in names.items():
        p = f"synthesis.{src}."
        if p + "weight" not in flat:
            raise CheckpointError(f"{path}: key {p + 'weight'!r} is missing from G_ema")
        sd[f"{dst}.conv.weight"] = flat[p + "weight"][None]
        sd[f"{dst}.conv.modulation.weight"] = flat[p + "affine.weight"]
        sd[f"{dst}.conv.modulation.bias"] = flat[p + "affine.bias"]
        if "torgb" in src:
            sd[f"{dst}.bias"] = flat[p + "bias"].reshape(1, 3, 1, 1)
        else:
            sd[f"{dst}.activate.bias"] = flat[p + "bias"]
            strength = flat.get(p + "noise_strength", torch.zeros([]))
            sd[f"{dst}.noise.weight"] = strength.reshape(1)
            if p + "noise_const" in flat:
                sd[f"noises.noise_{noise_names[src]}"] = flat[p + "noise_const"][None, None]
    fc0 = _submodules(_submodules(G_ema).get("mapping")).get("fc0")
    lr_mul = fc0.state.get("lr_multiplier") if fc0 is not None else None  # what NVIDIA's forward uses
    if lr_mul is None:
        lr_mul = map_kwargs.get("lr_multiplier")
    conv_clamp = settings["conv_clamp"]
    extra = {**settings, "note": "fp16 layers run in fp32 (as NVIDIA's force_fp32=True); conv_clamp honoured"}
    cfg = state_dict_config(sd)
    cfg.update(lr_mlp=float(lr_mul if lr_mul is not None else 0.01),
               conv_clamp=float(conv_clamp) if conv_clamp is not None else None)
    return sd, cfg, flat.get("mapping.w_avg"), extra


def _load_nvidia(path: Path):
    check_pickle_lengths(path)  # no length prefix may claim more than the file holds
    try:
        with open(path, "rb") as f:
            data = _NetworkUnpickler(f, path).load()
    except CheckpointError as exc:
        if str(exc).startswith(str(path)):
            raise
        raise type(exc)(f"{path}: {exc}") from None  # raised inside a tensor's storage, which knows no path
    except Exception as exc:
        raise _fail_load(path, exc) from None
    if isinstance(data, tuple):
        raise CheckpointError(f"{path}: an old TensorFlow StyleGAN2 pickle is not supported; convert it first")
    if not isinstance(data, dict) or "G_ema" not in data:
        raise CheckpointError(f"{path}: a pickle without 'G_ema'; expected an NVIDIA stylegan2-ada-pytorch network pickle")
    G_ema = data["G_ema"]
    check_views(_flatten(G_ema), path)
    if isinstance(G_ema, _Persistent) and G_ema.class_name == "Generator" and is_stylegan3(flat := _flatten(G_ema)):
        return _stylegan3_from_nvidia(path, G_ema, flat, CheckpointError)  # (StyleGAN3, extra)
    return _nvidia_to_rosinality(path, G_ema)


def _finish_stylegan3(G: StyleGAN3, extra: dict, path: Path, device) -> StyleGAN3:
    G.info = GeneratorInfo(name=path.stem, format="nvidia-pickle", path=str(path.resolve()), sha256=sha256_file(path),
                           resolution=G.resolution, num_ws=G.num_ws, w_dim=G.w_dim,
                           num_params=sum(p.numel() for p in G.parameters()), extra=extra)
    return G.eval().requires_grad_(False).to(device)


# -------------------------------------------------------------------- loading
def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> StyleGAN2 | StyleGAN3:
    """Build a :class:`StyleGAN2` from a rosinality ``.pt`` or an NVIDIA ``.pkl`` file, or a :class:`StyleGAN3`
    from an NVIDIA stylegan3 (config T or R) pickle, safely.

    Raises :class:`CheckpointError` (one-line message) for a missing, corrupt,
    truncated, mis-shaped or unsupported file and :class:`UnsafePickleError`
    when the file asks to run code.
    """
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: no such file; pass a checkpoint (.pt or .pkl) or a built-in name (toyfaces)")
    if path.is_dir():
        raise CheckpointError(f"{path}: is a folder; pass a checkpoint file (.pt or .pkl)")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path}: the file is empty; copy the checkpoint again")
    with open(path, "rb") as f:
        head = f.read(4)
    extra: dict = {}
    if zipfile.is_zipfile(path) or head[:1] != b"\x80":
        if head[:2] == b"PK" and not zipfile.is_zipfile(path):
            raise CheckpointError(f"{path}: the file is truncated or corrupt (broken zip archive); copy it again")
        sd, fmt, w_avg, saved_cfg = _load_rosinality(path)
        try:
            cfg = state_dict_config(sd)
        except KeyError as exc:
            raise CheckpointError(f"{path}: {exc.args[0]}") from None
        if saved_cfg:
            cfg["lr_mlp"] = float(saved_cfg.get("lr_mlp", 0.01))
    else:
        # A raw pickle: an NVIDIA network pickle, or torch.save's legacy (non-zip) format.
        try:
            loaded = _load_nvidia(path)
            fmt = "nvidia-pickle"
            if isinstance(loaded[0], StyleGAN3):
                return _finish_stylegan3(*loaded, path, device)
            sd, cfg, w_avg, extra = loaded
        except CheckpointError as exc:
            if "without 'G_ema'" not in str(exc):
                raise
            sd, fmt, w_avg, _ = _load_rosinality(path)
            cfg = state_dict_config(sd)
    G = StyleGAN2(**cfg)
    notes = _fill_model(G, sd, path)
    with torch.no_grad():
        if w_avg is not None:
            if tuple(w_avg.reshape(-1).shape) != (G.w_dim,):
                raise CheckpointError(f"{path}: latent_avg has shape {list(w_avg.shape)} but w_dim is {G.w_dim}")
            G.w_avg.copy_(w_avg.reshape(-1))
        else:
            G.w_avg.copy_(G.mean_latent(4096, seed=0))
            notes.append("no latent_avg in the file: w_avg = mean of 4096 seeded mapped z")
    if notes:
        extra["notes"] = notes
    G.info = GeneratorInfo(name=path.stem, format=fmt, path=str(path.resolve()), sha256=sha256_file(path),
                           resolution=G.resolution, num_ws=G.num_ws, w_dim=G.w_dim,
                           num_params=sum(p.numel() for p in G.parameters()), extra=extra)
    return G.eval().requires_grad_(False).to(device)
