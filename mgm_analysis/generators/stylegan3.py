"""StyleGAN3 generator ("alias-free", Karras et al., 2021) in plain PyTorch, written for mgm_analysis.

The network follows the paper and NVIDIA's released models, configs T
(3×3 convolutions, separable Kaiser filters) and R (1×1 convolutions, radially
symmetric jinc filters for the non-critical layers), so their pickles load
(``checkpoints.py``) and give the same images:

* mapping: normalise z, ``mapping_layers`` fully connected layers with the
  √2-gain leaky ReLU and a learning-rate multiplier; truncation towards
  ``w_avg`` (optionally only the first ``truncation_cutoff`` W+ layers);
* input: Fourier features on a grid with a margin, their frequencies and
  phases rotated and shifted by an affine of ``ws[:, 0]`` and by the stored
  ``transform`` (the user's inverse transform of the image), out-of-band
  frequencies faded out, then a learned channel mix;
* ``num_layers`` synthesis layers and a ToRGB: a modulated convolution
  (weight and style pre-normalised, demodulated; the input scaled by the
  layer's ``magnitude_ema``), then the filtered leaky ReLU — bias, up-sample
  by zero insertion and the layer's low-pass filter, leaky ReLU with gain,
  clamp, low-pass filter and down-sample;
* the image is the ToRGB output times ``output_scale``.

Everything runs in float32 on CPU or CUDA (a pickle's fp16 layers run in
fp32).  There are no noise inputs: an image depends only on ``ws``.

Per-layer geometry (sampling rates, cut-offs, sizes, paddings) is computed
from the constructor's hyper-parameters as the paper describes; the low-pass
filters are designed here with a Kaiser window (numpy) and loaders replace
them with the buffers stored in a checkpoint.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .base import LatentSpace

__all__ = ["StyleGAN3", "LayerSpec", "layer_specs", "design_lowpass_filter", "filtered_lrelu", "upfirdn2d",
           "upfirdn2d_ref",
           "tiny_stylegan3", "CONFIGS"]

_SQRT2 = math.sqrt(2.0)

#: the two released configurations, as overrides of the constructor's defaults
CONFIGS = {
    "T": dict(conv_kernel=3, use_radial_filters=False),
    "R": dict(conv_kernel=1, use_radial_filters=True),
}


# ------------------------------------------------------------------ filter design
def _kaiser_beta(atten: float) -> float:
    if atten > 50:
        return 0.1102 * (atten - 8.7)
    if atten > 21:
        return 0.5842 * (atten - 21) ** 0.4 + 0.07886 * (atten - 21)
    return 0.0


def _kaiser_atten(numtaps: int, width_rel: float) -> float:
    """Attenuation (dB) of a Kaiser-window FIR of ``numtaps`` taps and transition width (fraction of Nyquist)."""
    return 2.285 * (numtaps - 1) * math.pi * width_rel + 7.95


def design_lowpass_filter(numtaps: int, cutoff: float, width: float, fs: float, radial: bool = False
                          ) -> torch.Tensor | None:
    """Low-pass FIR: ``numtaps`` taps, cut-off and transition ``width`` in Hz at sampling rate ``fs``.

    Separable (1-D taps, a windowed sinc with a Kaiser window, unit DC gain) or,
    with ``radial``, a 2-D radially symmetric windowed jinc.  ``numtaps == 1``
    is the identity (None).
    """
    if numtaps < 1:
        raise ValueError(f"numtaps must be >= 1, got {numtaps}")
    if numtaps == 1:
        return None
    nyq = fs / 2
    beta = _kaiser_beta(_kaiser_atten(numtaps, width / nyq))
    window = np.kaiser(numtaps, beta)
    m = np.arange(numtaps, dtype=np.float64) - (numtaps - 1) / 2
    if not radial:
        c = cutoff / nyq
        h = c * np.sinc(c * m) * window
        return torch.as_tensor(h / h.sum(), dtype=torch.float32)
    x = m / fs
    r = torch.as_tensor(np.hypot(x[None, :], x[:, None]), dtype=torch.float64)
    f = torch.special.bessel_j1(2 * cutoff * math.pi * r) / (math.pi * r)
    f = f.numpy() * np.outer(window, window)
    return torch.as_tensor(f / f.sum(), dtype=torch.float32)


# ------------------------------------------------------------------ resampling ops
def upfirdn2d_ref(x: torch.Tensor, f: torch.Tensor | None, up: int = 1, down: int = 1,
                  pad: tuple[int, int, int, int] = (0, 0, 0, 0), gain: float = 1.0) -> torch.Tensor:
    """Per channel: insert ``up − 1`` zeros after each sample, pad (x0, x1, y0, y1; negative crops),
    convolve with ``f`` ([K] separable taps, [K, K], or None = identity) times ``gain``, keep every
    ``down``-th sample.  Plain PyTorch (depthwise convolutions), differentiable to any order."""
    b, c, h, w = x.shape
    if up > 1:
        x = F.pad(x.reshape(b, c, h, 1, w, 1), [0, up - 1, 0, 0, 0, up - 1]).reshape(b, c, h * up, w * up)
    px0, px1, py0, py1 = pad
    x = F.pad(x, [max(px0, 0), max(px1, 0), max(py0, 0), max(py1, 0)])
    x = x[:, :, max(-py0, 0): x.shape[2] - max(-py1, 0), max(-px0, 0): x.shape[3] - max(-px1, 0)]
    if f is None:
        x = x * gain if gain != 1 else x
        return x[:, :, ::down, ::down] if down > 1 else x
    f = f.to(x.dtype).flip(list(range(f.ndim))) * gain ** (f.ndim / 2)  # true convolution
    # depthwise weights are materialised (repeat, not expand): oneDNN is ~10x slower on CPU with a
    # zero-stride weight, most of it on the first call of each shape
    if f.ndim == 1:
        k = f.numel()
        x = F.conv2d(x, f.reshape(1, 1, 1, k).repeat(c, 1, 1, 1), groups=c, stride=(1, down))
        return F.conv2d(x, f.reshape(1, 1, k, 1).repeat(c, 1, 1, 1), groups=c, stride=(down, 1))
    return F.conv2d(x, f[None, None].repeat(c, 1, 1, 1), groups=c, stride=down)


def _upsample_axis(x: torch.Tensor, f: torch.Tensor, up: int, p0: int, p1: int, axis: int) -> torch.Tensor:
    """Along one axis (3 = width, 2 = height): zero insertion by ``up``, pad p0/p1 (negative crops), convolve
    with the 1-D taps ``f`` times ``up`` — as one depthwise transposed convolution, which never multiplies the
    inserted zeros."""
    c, n, k = x.shape[1], x.shape[axis], f.numel()
    w = (f.to(x.dtype) * up).reshape((1, 1, 1, k) if axis == 3 else (1, 1, k, 1)).repeat(c, 1, 1, 1)
    y = F.conv_transpose2d(x, w, stride=(1, up) if axis == 3 else (up, 1), groups=c)  # length (n − 1)·up + k
    start, length = k - 1 - p0, n * up + p0 + p1 - k + 1
    lo, hi = max(-start, 0), max(start + length - y.shape[axis], 0)
    if lo or hi:
        y = F.pad(y, [lo, hi, 0, 0] if axis == 3 else [0, 0, lo, hi])
    return y.narrow(axis, start + lo, length)


def upfirdn2d(x: torch.Tensor, f: torch.Tensor | None, up: int = 1, down: int = 1,
              pad: tuple[int, int, int, int] = (0, 0, 0, 0), gain: float = 1.0) -> torch.Tensor:
    """:func:`upfirdn2d_ref`, with up-sampling by separable taps done per axis as transposed convolutions
    (the same function; ~×N fewer multiplications for up-sampling by N)."""
    if up > 1 and f is not None and f.ndim == 1 and down == 1 and gain == up ** 2:
        px0, px1, py0, py1 = pad
        return _upsample_axis(_upsample_axis(x, f, up, px0, px1, 3), f, up, py0, py1, 2)
    return upfirdn2d_ref(x, f, up=up, down=down, pad=pad, gain=gain)


def filtered_lrelu(x: torch.Tensor, fu: torch.Tensor | None, fd: torch.Tensor | None, bias: torch.Tensor | None,
                   up: int = 1, down: int = 1, padding: tuple[int, int, int, int] = (0, 0, 0, 0),
                   gain: float = _SQRT2, slope: float = 0.2, clamp: float | None = None) -> torch.Tensor:
    """Bias, up-sample (zero insertion, pad, filter ``fu`` with gain up²), leaky ReLU × ``gain``, clamp to
    ±``clamp``, filter ``fd`` and down-sample: the non-linearity of a StyleGAN3 layer."""
    if bias is not None:
        x = x + bias.to(x.dtype)[None, :, None, None]
    x = upfirdn2d(x, fu, up=up, pad=padding, gain=up ** 2)
    if slope != 1:
        x = F.leaky_relu(x, slope)
    if gain != 1:
        x = x * gain
    if clamp is not None:
        x = x.clamp(-clamp, clamp)
    return upfirdn2d_ref(x, fd, down=down)


# ------------------------------------------------------------------ geometry
@dataclass(frozen=True)
class LayerSpec:
    """Geometry of one synthesis layer (sizes are square: width == height)."""

    name: str
    is_torgb: bool
    is_critically_sampled: bool
    use_fp16: bool
    in_channels: int
    out_channels: int
    in_size: int
    out_size: int
    in_sampling_rate: float
    out_sampling_rate: float
    in_cutoff: float
    out_cutoff: float
    in_half_width: float
    out_half_width: float
    conv_kernel: int
    up_factor: int
    down_factor: int
    up_taps: int
    down_taps: int
    down_radial: bool
    padding: tuple[int, int, int, int]
    tmp_sampling_rate: float


def layer_specs(img_resolution: int, img_channels: int = 3, channel_base: int = 32768, channel_max: int = 512,
                num_layers: int = 14, num_critical: int = 2, first_cutoff: float = 2, first_stopband: float = 2 ** 2.1,
                last_stopband_rel: float = 2 ** 0.3, margin_size: int = 10, num_fp16_res: int = 4,
                conv_kernel: int = 3, filter_size: int = 6, lrelu_upsampling: int = 2,
                use_radial_filters: bool = False) -> tuple[dict, list[LayerSpec]]:
    """The input's and every layer's geometry: cut-offs and stop-bands grow geometrically from the first layer
    to the last ``num_critical`` (critically sampled) ones; sampling rates are the next power of two above twice
    the stop-band (at most the image resolution); sizes add ``margin_size`` pixels on each side except for the
    last two layers."""
    if num_layers <= num_critical:
        raise ValueError(f"num_layers ({num_layers}) must exceed num_critical ({num_critical})")
    last_cutoff = img_resolution / 2
    last_stopband = last_cutoff * last_stopband_rel
    e = np.minimum(np.arange(num_layers + 1) / (num_layers - num_critical), 1)
    cutoffs = first_cutoff * (last_cutoff / first_cutoff) ** e
    stopbands = first_stopband * (last_stopband / first_stopband) ** e
    rates = np.exp2(np.ceil(np.log2(np.minimum(stopbands * 2, img_resolution))))
    half_widths = np.maximum(stopbands, rates / 2) - cutoffs
    sizes = rates + margin_size * 2
    sizes[-2:] = img_resolution
    channels = np.rint(np.minimum((channel_base / 2) / cutoffs, channel_max))
    channels[-1] = img_channels
    inp = dict(channels=int(channels[0]), size=int(sizes[0]), sampling_rate=float(rates[0]), bandwidth=float(cutoffs[0]))
    specs = []
    for idx in range(num_layers + 1):
        prev = max(idx - 1, 0)
        is_torgb = idx == num_layers
        k = 1 if is_torgb else conv_kernel
        in_rate, out_rate = int(rates[prev]), int(rates[idx])
        tmp_rate = max(in_rate, out_rate) * (1 if is_torgb else lrelu_upsampling)
        up = int(np.rint(tmp_rate / in_rate))
        down = int(np.rint(tmp_rate / out_rate))
        up_taps = filter_size * up if up > 1 and not is_torgb else 1
        down_taps = filter_size * down if down > 1 and not is_torgb else 1
        crit = idx >= num_layers - num_critical
        in_size, out_size = int(sizes[prev]), int(sizes[idx])
        # output size before down-sampling, minus the up-sampled input, plus what the two filters consume
        pad_total = (out_size - 1) * down + 1 - (in_size + k - 1) * up + up_taps + down_taps - 2
        pad_lo = (pad_total + up) // 2  # sample positions as in the symmetric interpretation of the paper
        pad_hi = pad_total - pad_lo
        out_ch = int(channels[idx])
        specs.append(LayerSpec(
            name=f"L{idx}_{out_size}_{out_ch}", is_torgb=is_torgb, is_critically_sampled=crit,
            use_fp16=bool(rates[idx] * 2 ** num_fp16_res > img_resolution),
            in_channels=int(channels[prev]), out_channels=out_ch, in_size=in_size, out_size=out_size,
            in_sampling_rate=in_rate, out_sampling_rate=out_rate, in_cutoff=float(cutoffs[prev]),
            out_cutoff=float(cutoffs[idx]), in_half_width=float(half_widths[prev]),
            out_half_width=float(half_widths[idx]), conv_kernel=k, up_factor=up, down_factor=down,
            up_taps=up_taps, down_taps=down_taps, down_radial=bool(use_radial_filters and not crit),
            padding=(int(pad_lo), int(pad_hi), int(pad_lo), int(pad_hi)), tmp_sampling_rate=float(tmp_rate)))
    return inp, specs


# ------------------------------------------------------------------ modules
class FullyConnected(nn.Module):
    """``y = act(x·(gain·W)ᵀ + lr_mul·b)``; weights stored divided by ``lr_mul`` (equalised learning rate)."""

    def __init__(self, in_features, out_features, activation=False, lr_multiplier=1.0, weight_init=1.0, bias_init=0.0):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features) * (weight_init / lr_multiplier))
        bias = torch.as_tensor(np.broadcast_to(np.asarray(bias_init, np.float32), [out_features]).copy())
        self.bias = nn.Parameter(bias / lr_multiplier)
        self.weight_gain = lr_multiplier / math.sqrt(in_features)
        self.bias_gain = lr_multiplier
        self.activation = activation

    def forward(self, x):
        y = torch.addmm(self.bias[None] * self.bias_gain, x, (self.weight * self.weight_gain).t())
        return F.leaky_relu(y, 0.2) * _SQRT2 if self.activation else y


class MappingNet(nn.Module):
    def __init__(self, z_dim, w_dim, num_layers=2, lr_multiplier=0.01):
        super().__init__()
        self.num_layers = num_layers
        for i in range(num_layers):
            self.add_module(f"fc{i}", FullyConnected(z_dim if i == 0 else w_dim, w_dim, True, lr_multiplier))

    def forward(self, z):
        x = z * (z.square().mean(1, keepdim=True) + 1e-8).rsqrt()
        for i in range(self.num_layers):
            x = getattr(self, f"fc{i}")(x)
        return x


class FourierInput(nn.Module):
    """Fourier features on the first layer's grid, turned and shifted per sample by an affine of w."""

    def __init__(self, w_dim, channels, size, sampling_rate, bandwidth):
        super().__init__()
        self.channels, self.size = channels, int(size)
        self.sampling_rate, self.bandwidth = float(sampling_rate), float(bandwidth)
        freqs = torch.randn(channels, 2)  # uniform on a disc of radius ``bandwidth``
        radii = freqs.square().sum(1, keepdim=True).sqrt()
        freqs = freqs / (radii * radii.square().exp().pow(0.25)) * bandwidth
        self.weight = nn.Parameter(torch.randn(channels, channels))
        self.affine = FullyConnected(w_dim, 4, weight_init=0.0, bias_init=[1, 0, 0, 0])
        self.register_buffer("transform", torch.eye(3))  # inverse transform of the image, set by the user
        self.register_buffer("freqs", freqs)
        self.register_buffer("phases", torch.rand(channels) - 0.5)

    def forward(self, w):
        b = w.shape[0]
        t = self.affine(w)  # (cos, sin, tx, ty) up to scale
        t = t / t[:, :2].norm(dim=1, keepdim=True)
        c, s, tx, ty = t.unbind(1)
        zero, one = torch.zeros_like(c), torch.ones_like(c)
        # inverse rotation, then inverse translation, then the user's transform
        rot = torch.stack([c, -s, zero, s, c, zero, zero, zero, one], 1).reshape(b, 3, 3)
        shift = torch.stack([one, zero, -tx, zero, one, -ty, zero, zero, one], 1).reshape(b, 3, 3)
        m = rot @ shift @ self.transform.to(w.dtype)[None]
        freqs = self.freqs.to(w.dtype)[None] @ m[:, :2, :2]                               # [B, C, 2]
        phases = self.phases.to(w.dtype)[None] + (self.freqs.to(w.dtype)[None] @ m[:, :2, 2:]).squeeze(2)
        amp = (1 - (freqs.norm(dim=2) - self.bandwidth) / (self.sampling_rate / 2 - self.bandwidth)).clamp(0, 1)
        coord = (torch.arange(self.size, dtype=w.dtype, device=w.device) + 0.5 - self.size / 2) / self.sampling_rate
        # x[b, c, y, x] = sin(2π (fx·gx + fy·gy + phase)) · amp
        arg = (freqs[:, :, 0, None, None] * coord[None, None, None, :] + freqs[:, :, 1, None, None] * coord[None, None, :, None]
               + phases[:, :, None, None])
        x = torch.sin(arg * (2 * math.pi)) * amp[:, :, None, None]
        return torch.einsum("bihw,oi->bohw", x, self.weight / math.sqrt(self.channels))


class SynthesisLayer(nn.Module):
    """Modulated convolution + filtered leaky ReLU (or the ToRGB: 1×1, no demodulation, no activation)."""

    def __init__(self, spec: LayerSpec, w_dim: int, conv_clamp: float | None = 256, design_filters: bool = True):
        super().__init__()
        self.spec = spec
        self.conv_clamp = conv_clamp
        k = spec.conv_kernel
        self.affine = FullyConnected(w_dim, spec.in_channels, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(spec.out_channels, spec.in_channels, k, k))
        self.bias = nn.Parameter(torch.zeros(spec.out_channels))
        self.register_buffer("magnitude_ema", torch.ones([]))
        fu = fd = None
        if design_filters:
            fu = design_lowpass_filter(spec.up_taps, spec.in_cutoff, spec.in_half_width * 2, spec.tmp_sampling_rate)
            fd = design_lowpass_filter(spec.down_taps, spec.out_cutoff, spec.out_half_width * 2,
                                       spec.tmp_sampling_rate, radial=spec.down_radial)
        self.register_buffer("up_filter", fu)
        self.register_buffer("down_filter", fd)

    def forward(self, x, w):
        sp = self.spec
        styles = self.affine(w)  # [B, I]
        weight = self.weight
        if sp.is_torgb:
            styles = styles * (1 / math.sqrt(sp.in_channels * sp.conv_kernel ** 2))
        else:
            # pre-normalise weight (per output channel) and style (per sample; cancels in the demodulation)
            weight = weight * weight.square().mean([1, 2, 3], keepdim=True).rsqrt()
            styles = styles * styles.square().mean(1, keepdim=True).rsqrt()
        # non-fused modulated convolution: scale inputs by style·input gain, shared conv, scale outputs
        gain = self.magnitude_ema.rsqrt()
        y = F.conv2d(x * (styles * gain)[:, :, None, None], weight, padding=sp.conv_kernel - 1)
        if not sp.is_torgb:
            # Σ_{i,k} (W[o,i,k]·s[b,i])² = Σ_i s[b,i]² · Σ_k W[o,i,k]²
            dcoefs = (styles.square() @ weight.square().sum([2, 3]).t() + 1e-8).rsqrt()  # [B, O]
            y = y * dcoefs[:, :, None, None]
        return filtered_lrelu(y, self.up_filter, self.down_filter, self.bias, up=sp.up_factor, down=sp.down_factor,
                              padding=sp.padding, gain=1.0 if sp.is_torgb else _SQRT2,
                              slope=1.0 if sp.is_torgb else 0.2, clamp=self.conv_clamp)


class StyleGAN3(LatentSpace, nn.Module):
    """StyleGAN3 generator with the mgm_analysis W+ interface (see ``base.Generator``).

    Hyper-parameters are NVIDIA's (``networks_stylegan3``); config T is the
    default, config R is ``conv_kernel=1, use_radial_filters=True`` (with
    twice the channels in the released models).  ``num_ws = num_layers + 2``:
    ws[:, 0] drives the Fourier input's transform, ws[:, 1 + i] layer i, the
    last one the ToRGB.
    """

    def __init__(self, img_resolution: int, z_dim: int = 512, w_dim: int = 512, channel_base: int = 32768,
                 channel_max: int = 512, num_layers: int = 14, num_critical: int = 2, first_cutoff: float = 2,
                 first_stopband: float = 2 ** 2.1, last_stopband_rel: float = 2 ** 0.3, margin_size: int = 10,
                 output_scale: float = 0.25, num_fp16_res: int = 4, conv_kernel: int = 3, filter_size: int = 6,
                 lrelu_upsampling: int = 2, use_radial_filters: bool = False, conv_clamp: float | None = 256,
                 mapping_layers: int = 2, lr_multiplier: float = 0.01, design_filters: bool = True):
        super().__init__()
        if img_resolution < 4:
            raise ValueError(f"img_resolution must be >= 4, got {img_resolution}")
        self.hparams = dict(img_resolution=img_resolution, z_dim=z_dim, w_dim=w_dim, channel_base=channel_base,
                            channel_max=channel_max, num_layers=num_layers, num_critical=num_critical,
                            first_cutoff=first_cutoff, first_stopband=first_stopband,
                            last_stopband_rel=last_stopband_rel, margin_size=margin_size, output_scale=output_scale,
                            num_fp16_res=num_fp16_res, conv_kernel=conv_kernel, filter_size=filter_size,
                            lrelu_upsampling=lrelu_upsampling, use_radial_filters=use_radial_filters,
                            conv_clamp=conv_clamp, mapping_layers=mapping_layers, lr_multiplier=lr_multiplier)
        inp, specs = layer_specs(img_resolution, 3, channel_base, channel_max, num_layers, num_critical, first_cutoff,
                                 first_stopband, last_stopband_rel, margin_size, num_fp16_res, conv_kernel,
                                 filter_size, lrelu_upsampling, use_radial_filters)
        self.resolution = img_resolution
        self.z_dim, self.w_dim = z_dim, w_dim
        self.num_ws = num_layers + 2
        self.output_scale = output_scale
        self.specs = specs
        self.n_mlp = mapping_layers
        self.channels = {"input": inp["channels"], **{sp.name: sp.out_channels for sp in specs}}
        self.map = MappingNet(z_dim, w_dim, mapping_layers, lr_multiplier)
        self.input = FourierInput(w_dim, **inp)
        self.layers = nn.ModuleList(SynthesisLayer(s, w_dim, conv_clamp, design_filters) for s in specs)
        self.register_buffer("w_avg", torch.zeros(w_dim))
        self.info = None  # GeneratorInfo, set by the loader
        self.eval()

    @property
    def config_name(self) -> str:
        """"T", "R", or "custom" for other combinations of kernel size and filter kind."""
        for name, over in CONFIGS.items():
            if all(self.hparams[k] == v for k, v in over.items()):
                return name
        return "custom"

    @property
    def layer_names(self) -> list[str]:
        """NVIDIA's layer names (``L<i>_<size>_<channels>``), one per W+ layer after the input's."""
        return [s.name for s in self.specs]

    # ------------------------------------------------------------------ mapping
    def z_to_w(self, z: torch.Tensor) -> torch.Tensor:
        """The mapping network alone: z [B, z_dim] -> w [B, w_dim] (``mapping`` adds truncation)."""
        return self.map(z.float())

    # ---------------------------------------------------------------- synthesis
    def synthesis(self, ws: torch.Tensor) -> torch.Tensor:
        """ws [B, num_ws, w_dim] -> img [B, 3, H, W] (nominally [-1, 1], not clamped)."""
        if ws.ndim != 3 or tuple(ws.shape[1:]) != (self.num_ws, self.w_dim):
            raise ValueError(f"ws must be [B, {self.num_ws}, {self.w_dim}], got {list(ws.shape)}")
        x = self.input(ws[:, 0])
        for i, layer in enumerate(self.layers):
            x = layer(x, ws[:, i + 1])
        return x * self.output_scale if self.output_scale != 1 else x

    def forward(self, z: torch.Tensor, truncation: float = 1.0) -> torch.Tensor:
        return self.synthesis(self.broadcast(self.mapping(z, truncation)))


def tiny_stylegan3(config: str = "T", resolution: int = 16, w_dim: int = 16, seed: int = 0, **kw) -> StyleGAN3:
    """A tiny, seeded, random StyleGAN3 (config "T" or "R") in eval mode, for tests and examples."""
    if config not in CONFIGS:
        raise ValueError(f"config must be one of {', '.join(CONFIGS)}, got {config!r}")
    args = dict(z_dim=w_dim, w_dim=w_dim, channel_base=256, channel_max=16, num_layers=4, margin_size=4)
    args.update(CONFIGS[config])
    args.update(kw)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        g = StyleGAN3(resolution, **args)
        with torch.no_grad():
            for layer in g.layers:
                layer.bias.normal_(0, 0.1)
                layer.magnitude_ema.fill_(float(torch.rand([]) + 0.5))
            g.w_avg.copy_(g.mean_latent(512, seed=seed))
    from .base import GeneratorInfo

    g.info = GeneratorInfo(name=f"tiny-sg3{config.lower()}{resolution}", format="builtin", path=None, sha256=None,
                           resolution=resolution, num_ws=g.num_ws, w_dim=w_dim,
                           num_params=sum(p.numel() for p in g.parameters()),
                           extra={"config": config, "layers": g.layer_names})
    return g.eval().requires_grad_(False)


# ------------------------------------------------------------------ NVIDIA pickles
#: constructor options of NVIDIA's Generator / SynthesisNetwork / SynthesisLayer / MappingNetwork that map onto ours
_SYN_OPTIONS = {"channel_base", "channel_max", "num_layers", "num_critical", "first_cutoff", "first_stopband",
                "last_stopband_rel", "margin_size", "output_scale", "num_fp16_res", "conv_kernel", "filter_size",
                "lrelu_upsampling", "use_radial_filters", "conv_clamp", "magnitude_ema_beta"}
_MAP_OPTIONS = {"num_layers", "lr_multiplier", "w_avg_beta"}
_CLASSES = {"": "Generator", "mapping": "MappingNetwork", "synthesis": "SynthesisNetwork",
            "synthesis.input": "SynthesisInput"}


def is_stylegan3(flat: dict) -> bool:
    """Whether a flattened NVIDIA generator (name -> tensor) is a StyleGAN3 (Fourier-feature input)."""
    return "synthesis.input.freqs" in flat


def _state(obj) -> dict:
    return getattr(obj, "state", None) or {}


def _sub(obj, name: str):
    return (_state(obj).get("_modules") or {}).get(name)


def _as_int_pair(v) -> tuple[int, int]:
    a = np.broadcast_to(np.asarray(v), [2])
    return int(a[0]), int(a[1])


def from_nvidia(path, G_ema, flat: dict[str, torch.Tensor], fail) -> tuple[StyleGAN3, dict]:
    """Build a :class:`StyleGAN3` from the unpickled ``G_ema`` of an NVIDIA stylegan3 pickle (config T or R).

    ``G_ema`` is the loader's stand-in for NVIDIA's persistent object (``class_name`` and ``state``: stored
    attributes, ``_init_kwargs``, ``_modules``, ``_parameters``, ``_buffers``), ``flat`` its tensors by name,
    ``fail(message)`` makes the exception to raise (one line).  Filters, magnitude EMAs, the input transform and
    ``w_avg`` come from the pickle; every layer's stored geometry is checked against the design.
    """
    kwargs = dict(_state(G_ema).get("_init_kwargs") or {})
    c_dim = int(kwargs.get("c_dim", 0) or 0)
    if c_dim > 0 or any(k.startswith("mapping.embed.") for k in flat):
        raise fail(f"{path}: conditional StyleGAN3 generators (c_dim={c_dim}) are not supported; "
                          "use an unconditional one")
    if int(kwargs.get("img_channels", 3)) != 3:
        raise fail(f"{path}: img_channels={kwargs['img_channels']} is not supported; only RGB generators")
    for where, cls in _CLASSES.items():
        obj = G_ema
        for part in where.split(".") if where else []:
            obj = _sub(obj, part)
        if getattr(obj, "class_name", None) != cls:
            found = getattr(obj, "class_name", None) or "nothing"
            raise fail(f"{path}: a non-default StyleGAN3 architecture is not supported: "
                              f"{where or 'G_ema'} is a {found}, expected NVIDIA's {cls}")
    map_kw = dict(kwargs.pop("mapping_kwargs", None) or {})
    syn_kw = {k: v for k, v in kwargs.items() if k not in ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels")}
    unknown = sorted(set(syn_kw) - _SYN_OPTIONS) + [f"mapping_kwargs.{k}" for k in sorted(set(map_kw) - _MAP_OPTIONS)]
    if unknown:
        raise fail(f"{path}: StyleGAN3 option(s) {', '.join(unknown)} are not supported by this loader")
    syn_kw.pop("magnitude_ema_beta", None)  # training only
    mapping = _sub(G_ema, "mapping")
    n_map = int(_state(mapping).get("num_layers", map_kw.get("num_layers", 2)))
    fc0 = _sub(mapping, "fc0")
    lr_mul = float(_state(fc0).get("bias_gain", map_kw.get("lr_multiplier", 0.01)))
    try:
        G = StyleGAN3(int(kwargs["img_resolution"]), z_dim=int(kwargs["z_dim"]), w_dim=int(kwargs["w_dim"]),
                      mapping_layers=n_map, lr_multiplier=lr_mul, design_filters=False,
                      **{k: (float(v) if isinstance(v, np.floating) else v) for k, v in syn_kw.items()})
    except (KeyError, ValueError, TypeError) as exc:
        raise fail(f"{path}: cannot build a StyleGAN3 from the pickle's options ({exc})") from None
    synthesis = _sub(G_ema, "synthesis")
    stored_names = list(_state(synthesis).get("layer_names") or [])
    if stored_names != G.layer_names:
        raise fail(f"{path}: the pickle's layers {stored_names} differ from the StyleGAN3 design "
                          f"{G.layer_names}; a non-default architecture is not supported")
    inp = _state(_sub(synthesis, "input"))
    if _as_int_pair(inp.get("size"))[0] != G.input.size or float(inp.get("sampling_rate")) != G.input.sampling_rate \
            or abs(float(inp.get("bandwidth")) - G.input.bandwidth) > 1e-9:
        raise fail(f"{path}: the Fourier input's size or bandwidth differ from the StyleGAN3 design")
    clamps = []
    for spec, name in zip(G.specs, stored_names, strict=True):
        layer_obj = _sub(synthesis, name)
        if getattr(layer_obj, "class_name", None) != "SynthesisLayer":
            raise fail(f"{path}: layer {name} is a {getattr(layer_obj, 'class_name', None)}, not NVIDIA's "
                       "SynthesisLayer; a non-default StyleGAN3 architecture is not supported")
        st = _state(layer_obj)
        try:
            stored = (_as_int_pair(st["in_size"])[0], _as_int_pair(st["out_size"])[0], int(st["up_factor"]),
                      int(st["down_factor"]), tuple(int(p) for p in st["padding"]), int(st["conv_kernel"]),
                      bool(st["is_torgb"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise fail(f"{path}: layer {name} lacks its geometry ({type(exc).__name__}: {exc}); "
                       "not a StyleGAN3 SynthesisLayer") from None
        ours = (spec.in_size, spec.out_size, spec.up_factor, spec.down_factor, spec.padding, spec.conv_kernel,
                spec.is_torgb)
        if stored != ours:
            raise fail(f"{path}: layer {name} has geometry {stored} but the StyleGAN3 design gives {ours}; "
                       "a non-default architecture is not supported")
        clamps.append(st.get("conv_clamp", G.hparams["conv_clamp"]))  # what NVIDIA's forward uses
    for layer, clamp in zip(G.layers, clamps, strict=True):
        layer.conv_clamp = None if clamp is None else float(clamp)
    # tensors: NVIDIA's names -> ours
    rename = {"mapping.w_avg": "w_avg"}
    for i in range(n_map):
        for p in ("weight", "bias"):
            rename[f"mapping.fc{i}.{p}"] = f"map.fc{i}.{p}"
    for k in ("weight", "affine.weight", "affine.bias", "transform", "freqs", "phases"):
        rename[f"synthesis.input.{k}"] = f"input.{k}"
    for i, name in enumerate(stored_names):
        for k in ("weight", "bias", "affine.weight", "affine.bias", "magnitude_ema", "up_filter", "down_filter"):
            rename[f"synthesis.{name}.{k}"] = f"layers.{i}.{k}"
    extra_keys = sorted(set(flat) - set(rename))
    if extra_keys:
        raise fail(f"{path}: unexpected tensor {extra_keys[0]!r} in G_ema; a non-default StyleGAN3 "
                          "architecture is not supported")
    own = dict(G.named_parameters())
    own.update(G.named_buffers())
    with torch.no_grad():
        for src, dst in rename.items():
            if dst.endswith("_filter"):
                layer = G.layers[int(dst.split(".")[1])]
                spec, kind = layer.spec, dst.rsplit(".", 1)[1]
                taps = spec.up_taps if kind == "up_filter" else spec.down_taps
                value = flat.get(src)
                want = [] if taps == 1 else ([taps, taps] if kind == "down_filter" and spec.down_radial else [taps])
                got = [] if value is None else list(value.shape)
                if got != want:
                    raise fail(f"{path}: {src} has shape {got or None} but the layer needs {want or None}")
                setattr(layer, kind, None if value is None else value.detach().float().clone())
                continue
            if src not in flat:
                raise fail(f"{path}: {src!r} is missing from G_ema")
            if tuple(flat[src].shape) != tuple(own[dst].shape):
                raise fail(f"{path}: {src!r} has shape {list(flat[src].shape)} but the design needs "
                                  f"{list(own[dst].shape)}")
            own[dst].copy_(flat[src].float())
    fp16 = [s.name for s in G.specs if s.use_fp16]
    clamp_values = sorted({float(c) for c in clamps if c is not None})
    clamp_shown = None if not clamp_values else clamp_values[0] if len(clamp_values) == 1 else clamp_values
    extra = {"config": G.config_name, "layers": G.layer_names, "num_fp16_res": int(syn_kw.get("num_fp16_res", 4)),
             "fp16_layers": fp16, "conv_clamp": clamp_shown,
             "note": "StyleGAN3; fp16 layers run in fp32; no noise inputs"}
    return G, extra
