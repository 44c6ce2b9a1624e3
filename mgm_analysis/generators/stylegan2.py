"""StyleGAN2 generator in plain PyTorch (Karras et al., 2020), written for mgm_analysis.

Its state-dict keys and its forward pass follow rosinality/stylegan2-pytorch,
the implementation the paper's code uses, so those checkpoints load unchanged;
NVIDIA network pickles are mapped onto the same keys (see ``checkpoints.py``).
Any resolution, latent width, mapping depth and channel table is allowed, so
the same class runs the built-in 64x64 ``toyfaces`` model and a 1024x1024 FFHQ
model.  Importing this module compiles nothing; it runs on CPU and CUDA.

Modulated convolutions are evaluated "non-fused": the input channels are scaled
by the style, one shared convolution runs over the whole batch, and the outputs
are scaled by the demodulation coefficients.  That is the same function as the
grouped-convolution form with per-sample weights and 1.5-4x faster on CPU.

Noise inputs are constant buffers (``noises.noise_<i>``), so a latent always
makes the same image.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.function import once_differentiable

from .base import LatentSpace

__all__ = ["StyleGAN2", "tiny_generator", "rosinality_channels", "num_ws_for"]

_SQRT2 = math.sqrt(2.0)


def rosinality_channels(resolution: int, channel_multiplier: int = 2) -> dict[int, int]:
    """The channel table of rosinality's Generator: {resolution: channels} for 4..resolution."""
    table = {4: 512, 8: 512, 16: 512, 32: 512, 64: 256, 128: 128, 256: 64, 512: 32, 1024: 16}
    out = {}
    for res in _resolutions(resolution):
        base = table.get(res, 16)
        out[res] = base * channel_multiplier if res >= 64 else base
    return out


def num_ws_for(resolution: int) -> int:
    """Number of W+ layers of a generator at ``resolution`` (2·log2(res) − 2)."""
    return 2 * int(math.log2(resolution)) - 2


def _resolutions(resolution: int) -> list[int]:
    if resolution < 4 or resolution & (resolution - 1):
        raise ValueError(f"resolution must be a power of two >= 4, got {resolution}")
    return [2**k for k in range(2, int(math.log2(resolution)) + 1)]


def _blur_kernel(factor: int = 2) -> torch.Tensor:
    k = torch.tensor([1.0, 3.0, 3.0, 1.0])
    k = k[None, :] * k[:, None]
    return k / k.sum() * factor**2


def _fir_passes(x: torch.Tensor, taps) -> torch.Tensor:
    """Valid correlation of the last two dims with outer(taps, taps), as two 1-D shifted multiply-add passes."""
    n = len(taps)
    ow = x.shape[3] - n + 1
    y = x[:, :, :, 0:ow] * taps[0]
    for j in range(1, n):
        y.add_(x[:, :, :, j:j + ow], alpha=taps[j])
    oh = y.shape[2] - n + 1
    z = y[:, :, 0:oh, :] * taps[0]
    for j in range(1, n):
        z.add_(y[:, :, j:j + oh, :], alpha=taps[j])
    return z


class _SeparableFIR(torch.autograd.Function):
    """upfirdn2d with a hand-written adjoint: the backward pass is the same filter run the other way
    (pad, correlate with the reversed taps, crop, subsample), so no zero-filled slice gradients are made."""

    @staticmethod
    def forward(ctx, x, taps, up, pad):
        ctx.taps, ctx.up, ctx.pad, ctx.in_shape = taps, up, pad, x.shape
        b, c, h, w = x.shape
        if up > 1:
            x = x.reshape(b, c, h, 1, w, 1)
            x = F.pad(x, [0, up - 1, 0, 0, 0, up - 1])
            x = x.reshape(b, c, h * up, w * up)
        return _fir_passes(F.pad(x, [pad[0], pad[1], pad[0], pad[1]]), taps)

    @staticmethod
    @once_differentiable  # the adjoint runs outside autograd: a second derivative would be silently wrong
    def backward(ctx, gy):
        if not ctx.needs_input_grad[0]:
            return None, None, None, None
        n, up, p0 = len(ctx.taps), ctx.up, ctx.pad[0]
        g = _fir_passes(F.pad(gy, [n - 1] * 4), ctx.taps[::-1])
        h, w = ctx.in_shape[2] * up, ctx.in_shape[3] * up
        g = g[:, :, p0:p0 + h, p0:p0 + w]
        if up > 1:
            g = g[:, :, ::up, ::up]
        return g.contiguous(), None, None, None

    @staticmethod
    def jvp(ctx, x_t, taps_t, up_t, pad_t):
        # forward-mode AD (torch.autograd.forward_ad): the filter is linear in x, so the tangent of its output is
        # the same filter applied to the input's tangent (used by the masked-Jacobian baseline's JVPs)
        return _SeparableFIR.forward(ctx, x_t, ctx.taps, ctx.up, ctx.pad)


def upfirdn2d(x: torch.Tensor, taps: list[float], up: int = 1, pad: tuple[int, int] = (0, 0)) -> torch.Tensor:
    """Upsample by zero insertion, zero-pad, then convolve each channel with the kernel outer(taps, taps).

    ``taps`` are the 1-D taps of a separable kernel (see :func:`separable_taps`);
    the filter runs as two 1-D passes of shifted multiply-adds, and its backward
    pass is the adjoint filter (far cheaper on CPU than a depthwise convolution's,
    or than autograd through the slices).  Pads must be >= 0.
    """
    if min(pad) < 0:
        raise ValueError(f"upfirdn2d pads must be >= 0, got {pad}")
    return _SeparableFIR.apply(x, tuple(taps), int(up), (int(pad[0]), int(pad[1])))


def separable_taps(kernel: torch.Tensor) -> list[float]:
    """1-D taps ``a`` with outer(a, a) == flip(kernel) (true convolution flips the kernel)."""
    k = torch.flip(kernel.detach().double().cpu(), [0, 1])
    row = k.sum(0)
    a = row / row.sum().sqrt() if row.sum() > 0 else row
    if not torch.allclose(a[:, None] * a[None, :], k, atol=1e-6):
        raise ValueError("upfirdn2d needs a separable, symmetric kernel (an outer product a·aᵀ)")
    return [float(v) for v in a]


class PixelNorm(nn.Module):
    def forward(self, x):
        return x * torch.rsqrt(torch.mean(x * x, dim=1, keepdim=True) + 1e-8)


class EqualLinear(nn.Module):
    """Linear layer with the equalised learning rate: weight stored divided by ``lr_mul``."""

    def __init__(self, in_dim, out_dim, bias_init=0.0, lr_mul=1.0, activation=False):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_dim, in_dim) / lr_mul)
        self.bias = nn.Parameter(torch.full((out_dim,), float(bias_init)))
        self.scale = lr_mul / math.sqrt(in_dim)
        self.lr_mul = lr_mul
        self.activation = activation

    def forward(self, x):
        y = F.linear(x, self.weight * self.scale, self.bias * self.lr_mul)
        return F.leaky_relu(y, 0.2) * _SQRT2 if self.activation else y


class Blur(nn.Module):
    def __init__(self, pad, factor=2):
        super().__init__()
        self.register_buffer("kernel", _blur_kernel(factor))
        self.taps = separable_taps(self.kernel)
        self.pad = pad

    def forward(self, x):
        return upfirdn2d(x, self.taps, pad=self.pad)


class ModulatedConv2d(nn.Module):
    """Style-modulated convolution with optional demodulation and 2x upsampling."""

    def __init__(self, in_ch, out_ch, kernel_size, w_dim, demodulate=True, upsample=False):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(1, out_ch, in_ch, kernel_size, kernel_size))
        self.modulation = EqualLinear(w_dim, in_ch, bias_init=1.0)
        self.scale = 1.0 / math.sqrt(in_ch * kernel_size**2)
        self.demodulate = demodulate
        self.upsample = upsample
        self.padding = kernel_size // 2
        if upsample:
            self.blur = Blur(pad=(1, 1), factor=2)

    def forward(self, x, w, trace=None, name=None, tail=None):
        """``tail=(add, gain)`` (demodulated convs only) returns leaky_relu(gain·demod·conv + add, 0.2) in one
        fused pass: StyledConv's noise, bias and √2-gain activation."""
        style = self.modulation(w)  # [B, I]
        if trace is not None:
            trace[f"dbg_style.{name}"] = style
        weight = self.weight[0] * self.scale  # [O, I, k, k]
        x = x * style[:, :, None, None]
        if self.upsample:
            x = F.conv_transpose2d(x, weight.transpose(0, 1), stride=2)
            x = self.blur(x)  # per-channel and linear: commutes with the per-(sample, channel) demodulation
        else:
            x = F.conv2d(x, weight, padding=self.padding)
        if self.demodulate:
            # Σ_{i,k} (scale·W[o,i,k]·s[b,i])² = Σ_i s[b,i]² · Σ_k (scale·W[o,i,k])²
            demod = torch.rsqrt(style.square() @ weight.square().sum(dim=(2, 3)).t() + 1e-8)  # [B, O]
            if tail is not None:
                add, gain = tail
                return F.leaky_relu(torch.addcmul(add, x, (demod * gain)[:, :, None, None]), 0.2, inplace=True)
            x = x * demod[:, :, None, None]
        elif tail is not None:
            raise ValueError("tail needs a demodulated convolution")
        return x


class NoiseInjection(nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, x, noise):
        return x + self.weight * noise


class FusedLeakyReLU(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x):
        return F.leaky_relu(x + self.bias[None, :, None, None], 0.2) * _SQRT2


class StyledConv(nn.Module):
    def __init__(self, in_ch, out_ch, w_dim, upsample=False):
        super().__init__()
        self.conv = ModulatedConv2d(in_ch, out_ch, 3, w_dim, upsample=upsample)
        self.noise = NoiseInjection()
        self.activate = FusedLeakyReLU(out_ch)

    def forward(self, x, w, noise, conv_clamp=None, trace=None, name=None):
        # = self.activate(self.noise(self.conv(x, w), noise)), fused: leaky_relu(x·d + n·noise + b, 0.2)·√2
        # with the positive gain √2 moved inside the leaky ReLU
        add = (self.noise.weight * noise + self.activate.bias[None, :, None, None]) * _SQRT2
        x = self.conv(x, w, trace, name, tail=(add, _SQRT2))
        return x.clamp(-conv_clamp, conv_clamp) if conv_clamp is not None else x


class ToRGB(nn.Module):
    def __init__(self, in_ch, w_dim, upsample=True):
        super().__init__()
        self.conv = ModulatedConv2d(in_ch, 3, 1, w_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(1, 3, 1, 1))
        if upsample:
            self.upsample = _Upsample()

    def forward(self, x, w, skip=None, conv_clamp=None, trace=None, name=None):
        out = self.conv(x, w, trace, name) + self.bias
        if conv_clamp is not None:
            out = out.clamp(-conv_clamp, conv_clamp)
        if skip is not None:
            out = out + self.upsample(skip)
        return out


class _Upsample(nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("kernel", _blur_kernel(2))
        self.taps = separable_taps(self.kernel)

    def forward(self, x):
        return upfirdn2d(x, self.taps, up=2, pad=(2, 1))


class ConstantInput(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.input = nn.Parameter(torch.randn(1, channels, 4, 4))

    def forward(self, batch):
        return self.input.repeat(batch, 1, 1, 1)


class StyleGAN2(LatentSpace, nn.Module):
    """StyleGAN2 generator with a W+ interface.

    Args:
        resolution:          image side, a power of two >= 4.
        w_dim:               width of w (rosinality's ``style_dim``).
        n_mlp:               depth of the mapping network (8 in the paper models).
        channel_multiplier:  rosinality's multiplier for resolutions >= 64; ignored when ``channels`` is given.
        channels:            {resolution: channels} for every resolution 4..resolution; None = rosinality's table.
        lr_mlp:              learning-rate multiplier of the mapping network (0.01).
        z_dim:               width of z; None = ``w_dim`` (rosinality ties them).
        conv_clamp:          clamp activations to ±conv_clamp (NVIDIA ``conv_clamp``); None = no clamp.
    """

    def __init__(
        self,
        resolution: int,
        w_dim: int = 512,
        n_mlp: int = 8,
        channel_multiplier: int = 2,
        channels: dict[int, int] | None = None,
        lr_mlp: float = 0.01,
        z_dim: int | None = None,
        conv_clamp: float | None = None,
    ):
        super().__init__()
        resolutions = _resolutions(resolution)
        if channels is None:
            channels = rosinality_channels(resolution, channel_multiplier)
        channels = {int(k): int(v) for k, v in channels.items()}
        missing = [r for r in resolutions if r not in channels]
        if missing:
            raise ValueError(f"channels table has no entry for resolution(s) {missing}; give one per resolution 4..{resolution}")
        self.resolution = resolution
        self.w_dim = w_dim
        self.z_dim = z_dim or w_dim
        self.n_mlp = n_mlp
        self.channels = {r: channels[r] for r in resolutions}
        self.lr_mlp = lr_mlp
        self.conv_clamp = conv_clamp
        self.num_ws = num_ws_for(resolution)
        self.num_layers = 2 * (len(resolutions) - 1) + 1  # noise inputs

        layers = [PixelNorm()]
        for i in range(n_mlp):
            layers.append(EqualLinear(self.z_dim if i == 0 else w_dim, w_dim, lr_mul=lr_mlp, activation=True))
        self.style = nn.Sequential(*layers)

        self.input = ConstantInput(channels[4])
        self.conv1 = StyledConv(channels[4], channels[4], w_dim)
        self.to_rgb1 = ToRGB(channels[4], w_dim, upsample=False)
        self.convs = nn.ModuleList()
        self.to_rgbs = nn.ModuleList()
        in_ch = channels[4]
        for res in resolutions[1:]:
            out_ch = channels[res]
            self.convs.append(StyledConv(in_ch, out_ch, w_dim, upsample=True))
            self.convs.append(StyledConv(out_ch, out_ch, w_dim))
            self.to_rgbs.append(ToRGB(out_ch, w_dim))
            in_ch = out_ch
        self.noises = nn.Module()  # constant noise inputs, keys noises.noise_<i> as in rosinality
        for i in range(self.num_layers):
            r = 2 ** ((i + 5) // 2)
            self.noises.register_buffer(f"noise_{i}", torch.randn(1, 1, r, r))
        self.register_buffer("w_avg", torch.zeros(w_dim))
        self.info = None  # GeneratorInfo, set by the loader
        self.eval()

    # ------------------------------------------------------------------ config
    def config(self) -> dict:
        """Constructor arguments, enough to rebuild this model (saved beside its weights)."""
        return dict(
            resolution=self.resolution, w_dim=self.w_dim, n_mlp=self.n_mlp,
            channels={str(k): v for k, v in self.channels.items()}, lr_mlp=self.lr_mlp,
            z_dim=self.z_dim, conv_clamp=self.conv_clamp,
        )

    def noise_buffers(self) -> list[torch.Tensor]:
        return [getattr(self.noises, f"noise_{i}") for i in range(self.num_layers)]

    # ------------------------------------------------------------------ mapping
    def z_to_w(self, z: torch.Tensor) -> torch.Tensor:
        """The mapping network alone: z [B, z_dim] -> w [B, w_dim] (``mapping`` adds truncation)."""
        return self.style(z)

    def style_mix(self, w1: torch.Tensor, w2: torch.Tensor, inject_index: int) -> torch.Tensor:
        """W+ taking layers < ``inject_index`` from w1 and the rest from w2 (both [B, w_dim])."""
        if not 0 <= inject_index <= self.num_ws:
            raise ValueError(f"inject_index must be in 0..{self.num_ws}, got {inject_index}")
        ws = self.broadcast(w1).clone()
        ws[:, inject_index:] = w2[:, None, :]
        return ws

    # ---------------------------------------------------------------- synthesis
    def synthesis(self, ws: torch.Tensor, noise: list[torch.Tensor] | None = None, trace: dict | None = None) -> torch.Tensor:
        """ws [B, num_ws, w_dim] -> img [B, 3, H, W] (nominally [-1, 1], not clamped).

        ``noise`` overrides the constant noise buffers (a list of ``num_layers``
        tensors [1 or B, 1, r, r]); ``trace``, when a dict, receives the
        intermediate values ``dbg_style.<layer>``, ``dbg_conv1_out`` and ``dbg_skip.<res>``.
        """
        if ws.ndim != 3 or ws.shape[1:] != (self.num_ws, self.w_dim):
            raise ValueError(f"ws must be [B, {self.num_ws}, {self.w_dim}], got {list(ws.shape)}")
        noise = self.noise_buffers() if noise is None else noise
        if len(noise) != self.num_layers:
            raise ValueError(f"noise must be a list of {self.num_layers} tensors, got {len(noise)}")
        clamp = self.conv_clamp
        x = self.input(ws.shape[0])
        x = self.conv1(x, ws[:, 0], noise[0], clamp, trace, "conv1")
        if trace is not None:
            trace["dbg_conv1_out"] = x
        skip = self.to_rgb1(x, ws[:, 1], None, clamp, trace, "to_rgb1")
        if trace is not None:
            trace["dbg_skip.4"] = skip
        for j, to_rgb in enumerate(self.to_rgbs):
            i = 2 * j + 1
            x = self.convs[2 * j](x, ws[:, i], noise[i], clamp, trace, f"convs.{2 * j}")
            x = self.convs[2 * j + 1](x, ws[:, i + 1], noise[i + 1], clamp, trace, f"convs.{2 * j + 1}")
            skip = to_rgb(x, ws[:, i + 2], skip, clamp, trace, f"to_rgbs.{j}")
            if trace is not None:
                trace[f"dbg_skip.{skip.shape[-1]}"] = skip
        return skip

    def forward(self, z: torch.Tensor, truncation: float = 1.0, truncation_cutoff: int | None = None) -> torch.Tensor:
        """z [B, z_dim] -> img [B, 3, H, W] through mapping, broadcast and synthesis."""
        return self.synthesis(self.broadcast(self.mapping(z, truncation, truncation_cutoff)))


def tiny_generator(resolution: int = 16, w_dim: int = 32, seed: int = 0, n_mlp: int = 2,
                   channels: dict[int, int] | None = None) -> StyleGAN2:
    """A tiny, seeded, randomly initialised StyleGAN2 in eval mode, for tests and examples."""
    if channels is None:
        channels = {r: max(4, 16 // max(1, r // 16)) for r in _resolutions(resolution)}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        g = StyleGAN2(resolution, w_dim=w_dim, n_mlp=n_mlp, channels=channels)
        with torch.no_grad():
            for conv in [g.conv1, *g.convs]:
                conv.noise.weight.fill_(0.1)
            g.w_avg.copy_(g.mean_latent(512, seed=seed))
    from .base import GeneratorInfo

    g.info = GeneratorInfo(name=f"tiny{resolution}", format="builtin", path=None, sha256=None,
                           resolution=resolution, num_ws=g.num_ws, w_dim=w_dim,
                           num_params=sum(p.numel() for p in g.parameters()))
    return g.eval().requires_grad_(False)
