"""The hand-written fast paths of the StyleGAN2 module agree with the plain formulas, values and gradients."""

import math

import pytest
import torch
import torch.nn.functional as F

from mgm_analysis.generators.stylegan2 import StyledConv, _blur_kernel, separable_taps, upfirdn2d


def _reference_upfirdn2d(x, kernel, up, pad):
    """Zero insertion, zero pad, then a depthwise true convolution with ``kernel`` (autograd all the way)."""
    b, c, h, w = x.shape
    if up > 1:
        z = x.new_zeros(b, c, h * up, w * up)
        z[:, :, ::up, ::up] = x
        x = z
    x = F.pad(x, [pad[0], pad[1], pad[0], pad[1]])
    k = torch.flip(kernel, [0, 1]).to(x)[None, None].repeat(c, 1, 1, 1)
    return F.conv2d(x, k, groups=c)


@pytest.mark.parametrize("up,pad", [(1, (1, 1)), (2, (2, 1)), (1, (0, 0)), (2, (0, 3))])
def test_upfirdn2d_matches_depthwise_convolution_and_its_gradient(up, pad):
    kernel = _blur_kernel(2).double()
    taps = separable_taps(kernel)
    x = torch.randn(2, 3, 5, 6, dtype=torch.float64, requires_grad=True)
    y = upfirdn2d(x, taps, up=up, pad=pad)
    y_ref = _reference_upfirdn2d(x, kernel, up, pad)
    assert y.shape == y_ref.shape
    assert torch.allclose(y, y_ref, atol=1e-12)
    g = torch.randn_like(y)
    (gx,) = torch.autograd.grad(y, x, g)
    (gx_ref,) = torch.autograd.grad(y_ref, x, g)
    assert torch.allclose(gx, gx_ref, atol=1e-12)
    assert torch.autograd.gradcheck(lambda t: upfirdn2d(t, taps, up=up, pad=pad), (x,))


def test_upfirdn2d_refuses_negative_pads():
    with pytest.raises(ValueError, match="pads"):
        upfirdn2d(torch.zeros(1, 1, 4, 4), [0.5, 0.5], pad=(-1, 0))


@pytest.mark.parametrize("upsample", [False, True])
def test_styled_conv_fused_tail_equals_the_unfused_layers(upsample):
    torch.manual_seed(0)
    layer = StyledConv(4, 5, 8, upsample=upsample).double()
    with torch.no_grad():
        layer.noise.weight.fill_(0.3)
        layer.activate.bias.normal_()
    x = torch.randn(3, 4, 6, 6, dtype=torch.float64, requires_grad=True)
    w = torch.randn(3, 8, dtype=torch.float64, requires_grad=True)
    side = 12 if upsample else 6
    noise = torch.randn(1, 1, side, side, dtype=torch.float64)

    fused = layer(x, w, noise)
    # the same layer, written out step by step: modulate, convolve, demodulate, blur, noise, bias, lrelu·√2
    conv = layer.conv
    style = conv.modulation(w)
    weight = conv.weight[0] * conv.scale
    h = x * style[:, :, None, None]
    h = F.conv_transpose2d(h, weight.transpose(0, 1), stride=2) if upsample else F.conv2d(h, weight, padding=1)
    demod = torch.rsqrt(style.square() @ weight.square().sum(dim=(2, 3)).t() + 1e-8)
    h = h * demod[:, :, None, None]
    if upsample:
        h = _reference_upfirdn2d(h, conv.blur.kernel.double(), 1, conv.blur.pad)
    h = h + layer.noise.weight * noise
    plain = F.leaky_relu(h + layer.activate.bias[None, :, None, None], 0.2) * math.sqrt(2)

    assert torch.allclose(fused, plain, atol=1e-12)
    g = torch.randn_like(plain)
    grads = torch.autograd.grad(fused, (x, w), g)
    grads_ref = torch.autograd.grad(plain, (x, w), g)
    for a, b in zip(grads, grads_ref, strict=True):
        assert torch.allclose(a, b, atol=1e-10)


def test_upfirdn2d_refuses_a_second_derivative():
    """The adjoint runs outside autograd, so a double backward must fail loudly, not return zeros."""
    x = torch.randn(1, 1, 4, 4, dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(upfirdn2d(x, [0.5, 0.5], pad=(1, 0)).square().sum(), x, create_graph=True)
    with pytest.raises(RuntimeError, match="differentiate twice"):
        g.sum().backward()
