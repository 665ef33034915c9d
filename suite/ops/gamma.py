"""SAN's mapping gamma over K-fold wide relation tensors, without materialising or keeping them.

gamma (1x1 convs, BNs, ReLUs) runs on every (pixel, footprint position) pair, so its input and
hidden activations are K = k^2 times wider than a feature map. Two exact reformulations:

- inference (BNs with running statistics, no autograd): gamma is pointwise, so it runs on a few
  footprint positions at a time (pairwise) or accumulates its first layer one position at a time
  (patchwise concatenation), with each BN folded into the conv before it. Only gamma's output,
  the attention weights, is ever whole. `pairwise_weights_inference`, `concatenation_weights_inference`.
- training: `batch_norm_relu_conv` runs a chain of BN-ReLU-convs as one autograd op that keeps only
  its input (or not even that: what produced it), the BN statistics and any much narrower hidden
  layer, and recomputes the rest in backward.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from suite.ops.aggregation import weights_channels_last
from suite.ops.autograd import first_order_backward
from suite.ops.conv import conv1x1, conv1x1_relu_backward
from suite.ops.relations import pairwise_width, relation_into
from suite.ops.window import Window, accumulator_dtype

# Footprint positions per chunk in inference: ~2 MiB of float32 gamma input, which two threads
# split, so each one's half and gamma's activations on it stay in its core's 1 MiB L2 cache
# (measured on 2 cores, SAN10 at batch 8: 2^19 about 2 % faster than 2^18 and 2^20).
CHUNK_ELEMENTS = 2**19
# In training, gamma's op keeps a hidden layer's input when it is at least this many times smaller than
# the relation tensor (cheap next to the memory budget); wider ones are recomputed in backward.
KEEP_RATIO = 8
LOG2_E = 1.4426950408889634


# ----------------------------------------------------------------------------------- inference
@dataclass
class _Layer:
    weight: Tensor  # (out, in)
    bias: Tensor | None
    relu: bool


@dataclass
class FoldedGamma:
    """gamma with running BN statistics as matrices: its leading BN as a per-channel affine
    (scale, shift) and ReLU, then its 1x1 convs, each with the BN that follows it folded in."""

    scale: Tensor | None
    shift: Tensor | None
    relu: bool
    layers: list[_Layer]


def fold_gamma(gamma: nn.Sequential, dtype: torch.dtype | None = None) -> FoldedGamma:
    """Fold gamma; with `dtype`, the result is cast to it (under autocast: the features' dtype)."""
    folded = _fold(gamma)
    if dtype is None:
        return folded

    def cast(t: Tensor | None) -> Tensor | None:
        return None if t is None else t.to(dtype)

    layers = [_Layer(cast(layer.weight), cast(layer.bias), layer.relu) for layer in folded.layers]
    return FoldedGamma(cast(folded.scale), cast(folded.shift), folded.relu, layers)


def _fold(gamma: nn.Sequential) -> FoldedGamma:
    scale = shift = None
    relu, layers = False, []
    for module in gamma:
        if isinstance(module, nn.Conv2d):
            if module.kernel_size != (1, 1) or module.groups != 1:
                raise TypeError("gamma's convs must be 1x1 and ungrouped")
            layers.append(_Layer(module.weight.flatten(1), module.bias, relu=False))
        elif isinstance(module, nn.BatchNorm2d):
            s, t = bn_affine(module)
            if not layers:
                scale, shift = s, t
                continue
            layer = layers[-1]
            if layer.relu:
                raise TypeError("cannot fold a BN that follows a ReLU into gamma's conv")
            layer.weight = s[:, None] * layer.weight
            layer.bias = t if layer.bias is None else torch.addcmul(t, s, layer.bias)
        elif isinstance(module, nn.ReLU):
            if layers:
                layers[-1].relu = True
            else:
                relu = True
        else:
            raise TypeError(f"gamma may only hold Conv2d, BatchNorm2d and ReLU, not {type(module).__name__}")
    return FoldedGamma(scale, shift, relu, layers)


def pairwise_weights_inference(
    phi: Tensor,
    psi: Tensor,
    position: Tensor | None,
    gamma: nn.Sequential,
    relation: str,
    window: Window,
    weight_channels: int,
    out: Tensor | None = None,
) -> Tensor:
    """softmax_j gamma([delta(phi_i, psi_j), pos_ij]) -> (N, Cw, K, H*W), in inference; the position
    term pos_ij (1, P, K, H*W), p_i - p_j or p_j, is the same for every image (or None).

    Computed a few footprint positions j at a time: only gamma's output is ever whole, laid out
    footprint-major, (K, N, Cw, H*W) or, where the aggregation wants its channels contiguous
    (`weights_channels_last`), (K, N, H*W, Cw), so each chunk of positions is one contiguous block
    that gamma's last matmul writes directly and the aggregation reads one block per position. The
    position channels enter gamma's first layer through their own columns of its weight, once for
    the whole batch, with that layer's bias; gamma's leading BN is folded into phi and psi for a
    sum or difference. A last-layer bias is dropped: the softmax over j cancels it. The softmax
    runs as the chunks are made, in base 2 (`softmax_base2_`; log2 e is folded into the last layer).
    """
    n, rel, h, w = phi.shape
    folded = fold_gamma(gamma, phi.dtype)
    layers = list(folded.layers)
    # the logits in base 2 (x log2 e, which commutes with a last ReLU) for `softmax_base2_`
    last = layers[-1]
    layers[-1] = _Layer(last.weight * LOG2_E, last.bias * LOG2_E if last.relu and last.bias is not None else None,
                        last.relu)
    width, first = pairwise_width(relation, rel), layers[0]
    delta_scale = delta_shift = None
    if folded.scale is not None and relation in ("subtraction", "summation"):
        # BN(phi_i -+ psi_j) = (s phi_i + t) -+ s psi_j, exact with either padding
        phi = torch.addcmul(folded.shift[:width, None, None], phi, folded.scale[:width, None, None])
        psi = psi * folded.scale[:width, None, None]
    elif folded.scale is not None:
        delta_scale, delta_shift = folded.scale[:width], folded.shift[:width]
    # Where the weights are wanted channels-contiguous (`weights_channels_last`) gamma runs
    # pixel-major: each layer one product over all of a chunk's (position, image, pixel) rows,
    # instead of one per image and position over its few pixels (SAN10's 7 x 7 stage at batch 8:
    # two products over 3,920 rows, not 80 of 128 x 128 x 49 then 80 of 64 x 128 x 49).
    transposed = weights_channels_last(weight_channels, phi.device)  # (K, N, H*W, Cw) in memory
    pos_hidden = None
    if position is not None:  # (1, 2, K, L) -> (K, 1, hidden, L), or pixel-major (K, 1, L, hidden)
        scale, shift = (None, None) if folded.scale is None else (folded.scale[width:], folded.shift[width:])
        z = _affine_relu(position[0].transpose(0, 1), scale, shift, folded.relu)
        pos_hidden = torch.matmul(first.weight[:, width:], z).unsqueeze(1)
        if first.bias is not None:
            pos_hidden += first.bias[:, None]
            layers[0] = first = _Layer(first.weight, None, first.relu)
        if transposed:
            pos_hidden = pos_hidden.transpose(-1, -2).contiguous()
    chunk = min(window.size, max(1, CHUNK_ELEMENTS // (n * width * h * w)))
    # delta, phi and psi channels-last: a shifted window of psi is then h runs of w * C contiguous
    # values, which the element-wise loops vectorise; in NCHW they are runs of w, all scalar below
    # 16 px (SAN10 at batch 8, 14 px: 101 vs 35 us a footprint position). gamma's first product
    # reads delta transposed, which BLAS takes as it is.
    phi, psi = phi.contiguous(memory_format=torch.channels_last), psi.contiguous(memory_format=torch.channels_last)
    psi_padded, offsets = window.pad_input(psi), window.offsets()
    shape = (window.size, n, h * w, weight_channels) if transposed else (window.size, n, weight_channels, h * w)
    logits = phi.new_empty(shape) if out is None else out.view(shape)
    buffer = phi.new_empty((chunk, n, h, w, width))  # one chunk of delta at a time, footprint-major

    def chunks() -> Iterator[Tensor]:  # gamma's output, one chunk of footprint positions at a time
        for start in range(0, window.size, chunk):
            stop = min(start + chunk, window.size)
            delta = buffer[: stop - start]
            relation_into(delta.permute(1, 4, 0, 2, 3), phi, psi_padded, relation, offsets[start:stop])
            extra = None if pos_hidden is None else (stop - start, pos_hidden[start:stop])
            if transposed:
                z = _affine_relu(delta.view(-1, width).t(), delta_scale, delta_shift, folded.relu, inplace=True)
                _run_layers_pixel_major(layers, z.t(), out=logits[start:stop].view(-1, weight_channels),
                                        first_weight=first.weight[:, :width], first_extra=extra)
            else:
                z = delta.view((stop - start) * n, h * w, width).transpose(1, 2)
                z = _affine_relu(z, delta_scale, delta_shift, folded.relu, inplace=True)
                _run_layers(layers, z, out=logits[start:stop].flatten(0, 1),
                            first_weight=first.weight[:, :width], first_extra=extra)
            yield logits[start:stop]

    softmax_base2_(chunks, logits)
    return logits.permute(1, 3, 0, 2) if transposed else logits.permute(1, 2, 0, 3)


def softmax_base2_(chunks: Callable[[], Iterator[Tensor]], logits: Tensor) -> Tensor:
    """softmax over dim 0 of `logits` (K, ...) given in base 2 (2^l, not e^l), in place, as `chunks()`
    (an iterator that writes the logits a few rows at a time, yielding each block) produces them.

    On the CPU, while every logit is within +-bound, each 2^l and each column's sum stay inside
    the dtype's normal range, so the shift by the column's maximum would change no value beyond
    rounding: each block is exponentiated and summed as it is made, while still in cache, and
    only the division passes over the whole. A block out of that range (or NaN) makes the logits
    again and takes the shift, as other devices do at once (a check per block would wait for them).
    exp2, not exp: torch.exp on the CPU slows down by an order of magnitude where its results
    underflow (inputs below about -87, e^-87 being near float32's smallest normal), as a spread of
    logits in a trained model makes them; exp2 has no such cliff, and is faster anyway.
    """
    info = torch.finfo(logits.dtype)
    bound = min(math.log2(info.max) - math.log2(logits.shape[0]) - 1, -math.log2(info.tiny))
    total = torch.zeros(logits.shape[1:], dtype=accumulator_dtype(logits.dtype), device=logits.device)
    if logits.device.type == "cpu":
        for block in chunks():
            low, high = torch.aminmax(block)
            if not (-bound <= low.item() and high.item() <= bound):
                break
            for row in block.exp2_():  # not block.sum(0): a reduction kernel, slow over one or a few rows
                total.add_(row)
        else:
            return logits.div_(total)
    for _ in chunks():  # all of them (again: on the CPU the blocks before the wide one are exponentiated)
        pass
    logits.sub_(logits.amax(0)).exp2_()
    return logits.div_(torch.sum(logits, 0, dtype=total.dtype, out=total))


def concatenation_weights_inference(
    phi: Tensor, psi: Tensor, gamma: nn.Sequential, window: Window, weight_channels: int, out: Tensor | None = None
) -> Tensor:
    """Patchwise gamma([phi_i, psi_j for all j]) -> (N, Cw, K, H*W), in inference, without the
    (N, (K+1) C, H, W) concatenation.

    gamma's first layer is linear in its input channels, so it accumulates one footprint position
    at a time: W_phi pre(phi) + sum_j W_j pre_j(psi shifted by j), where pre is gamma's leading BN
    and ReLU, channel by channel (channel C + c*K + j of the concatenation is channel c of psi at
    position j, nn.Unfold's order, each with its own BN). It runs pixel-major, on phi and psi
    channels-last: pre_j of a shifted window is then h runs of W x C contiguous values, and each
    position is one product over all the batch's pixels (N x H x W rows), not one per image.
    The last layer's rows are reordered footprint-major, so the weights of position j are one
    contiguous block: (K, N, H*W, Cw) in memory where the aggregation wants channels contiguous
    (`weights_channels_last`), else (N, K, Cw, H*W). `out`, if given, is a contiguous tensor of
    that many elements to hold them (see `suite.ops.workspace`).
    """
    n, rel, h, w = phi.shape
    footprint, cw, rows = window.size, weight_channels, n * h * w
    folded = fold_gamma(gamma, phi.dtype)
    layers = list(folded.layers)
    last = layers[-1]  # rows o = cw * K + j -> j * Cw + cw
    layers[-1] = _Layer(last.weight.view(cw, footprint, -1).transpose(0, 1).reshape(cw * footprint, -1),
                        None if last.bias is None else last.bias.view(cw, footprint).t().reshape(-1), last.relu)
    first = layers[0]
    per_position = first.weight[:, rel:].view(-1, rel, footprint).permute(2, 1, 0)  # (K, rel, hidden)
    normalised = phi.new_empty((n, h, w, rel))  # pre(.) of phi, then of each shifted window of psi

    def pre(z: Tensor, channels: slice | Tensor) -> Tensor:  # z: (N, rel, H, W) channels-last -> (rows, rel)
        target = normalised.permute(0, 3, 1, 2)
        if folded.scale is not None:
            torch.addcmul(folded.shift[channels, None, None], z, folded.scale[channels, None, None], out=target)
        else:
            target.copy_(z)
        return (normalised.relu_() if folded.relu else normalised).view(rows, rel)

    phi, psi = phi.contiguous(memory_format=torch.channels_last), psi.contiguous(memory_format=torch.channels_last)
    psi_padded = window.pad_input(psi)
    channels = rel + torch.arange(rel, device=phi.device) * footprint
    # all in phi's dtype, gamma's folded one (autocast would compute some products in another, and
    # in-place and out= products take no part in it); a reflection-padded psi may be float32 under autocast
    with torch.autocast(phi.device.type, enabled=False):
        hidden = torch.mm(pre(phi, slice(0, rel)), first.weight[:, :rel].t())  # (rows, hidden)
        for j, (dy, dx) in enumerate(window.offsets()):
            hidden.addmm_(pre(psi_padded[..., dy : dy + h, dx : dx + w], channels + j), per_position[j])
        hidden = _pixel_major_layer(hidden, first, None)
        for layer in layers[1:-1]:
            hidden = _pixel_major_layer(torch.mm(hidden, layer.weight.t()), layer, None)
        last = layers[-1]
        if len(layers) > 1 and weights_channels_last(cw, phi.device):  # a block per position over all pixels
            logits = phi.new_empty((footprint, rows, cw)) if out is None else out.view(footprint, rows, cw)
            for j, weight in enumerate(last.weight.view(footprint, cw, -1)):
                _pixel_major_layer(torch.mm(hidden, weight.t(), out=logits[j]), last, slice(j * cw, (j + 1) * cw))
            return logits.view(footprint, n, h * w, cw).permute(1, 3, 0, 2)
        logits = phi.new_empty((n, footprint, cw, h * w)) if out is None else out.view(n, footprint, cw, h * w)
        channel_major = hidden.view(n, h * w, -1).transpose(1, 2)
        if len(layers) == 1:  # the first layer was the last: hidden holds the logits
            logits.view(n, footprint * cw, h * w).copy_(channel_major)
        else:
            _run_layers([last], channel_major, out=logits.view(n, footprint * cw, h * w))
        return logits.transpose(1, 2)


def _pixel_major_layer(z: Tensor, layer: _Layer, channels: slice | None) -> Tensor:
    """A product's output z (rows, C_out) plus the layer's bias (its `channels`), then its ReLU, in place."""
    if layer.bias is not None:
        z.add_(layer.bias if channels is None else layer.bias[channels])
    return z.relu_() if layer.relu else z


def bn_affine(bn: nn.BatchNorm2d) -> tuple[Tensor, Tensor]:
    """(scale, shift) with BN(x) = scale * x + shift under running statistics."""
    scale = torch.rsqrt(bn.running_var + bn.eps)
    if bn.weight is not None:
        scale = scale * bn.weight
    shift = -bn.running_mean * scale
    return scale, shift if bn.bias is None else shift + bn.bias


def _affine_relu(z: Tensor, scale: Tensor | None, shift: Tensor | None, relu: bool, inplace: bool = False) -> Tensor:
    """relu?(scale * z + shift) per channel (dim 1) of z (B, C, L); overwrites z if `inplace`."""
    if scale is not None:
        z = torch.addcmul(shift[:, None], z, scale[:, None], out=z if inplace else None)
        inplace = True
    if relu:
        return z.relu_() if inplace else z.relu()
    return z


def _run_layers(
    layers: list[_Layer],
    z: Tensor,
    out: Tensor,
    first_weight: Tensor | None = None,
    first_extra: tuple[int, Tensor] | None = None,
) -> Tensor:
    """gamma's 1x1 convs as matmuls on z (B, C, L); the last writes into `out` (B, C_out, L).

    `first_weight` replaces the first layer's weight (some of its input columns come in another
    way), and `first_extra` = (groups, t) adds t (groups, 1, C_out, L) to its output (B, C_out, L)
    viewed as (groups, B / groups, C_out, L), before the bias and ReLU.
    """
    for i, layer in enumerate(layers):
        weight = first_weight if i == 0 and first_weight is not None else layer.weight
        z = torch.matmul(weight, z, out=out if i == len(layers) - 1 else None)
        if i == 0 and first_extra is not None:
            groups, extra = first_extra
            z.view(groups, -1, *z.shape[1:]).add_(extra)
        if layer.bias is not None:
            z.add_(layer.bias[:, None])
        if layer.relu:
            z.relu_()
    return z


def _run_layers_pixel_major(
    layers: list[_Layer], z: Tensor, out: Tensor, first_weight: Tensor, first_extra: tuple[int, Tensor] | None
) -> Tensor:
    """`_run_layers` on z (rows, C), one product per layer over all rows; the last writes into
    `out` (rows, C_out), and `first_extra` = (groups, t) adds t (groups, 1, L, C_out)."""
    for i, layer in enumerate(layers):
        z = torch.mm(z, (first_weight if i == 0 else layer.weight).t(), out=out if i == len(layers) - 1 else None)
        if i == 0 and first_extra is not None:
            groups, extra = first_extra
            z.view(groups, -1, *extra.shape[2:]).add_(extra)
        _pixel_major_layer(z, layer, None)
    return z


# ------------------------------------------------------------------------------------- training
def batch_norm_relu_conv(
    make: Callable[..., Tensor], layers: Sequence[tuple[nn.BatchNorm2d, Tensor, Tensor | None]], *inputs: Tensor
) -> Tensor:
    """convL(relu(bnL(... conv1(relu(bn1(make(*inputs))))))) for training-mode BNs and 1x1 convs,
    keeping only `inputs`, the BN batch statistics and any hidden layer's input that is at least
    KEEP_RATIO times smaller than make's output for backward. `layers` holds each layer's BN and its
    conv's (out, in, 1, 1) weight and bias (maybe None).

    Autograd would keep make's output and, per layer, the BN output and the ReLU output: tensors as
    large as the relation tensor when make builds it (K times a feature map). Backward recomputes
    make(*inputs) (for the relations: shifts and a concatenation) and every layer's input not kept
    from the saved statistics, then runs the layers' backward, last first and in place (ReLU and BN
    backward in the buffer of the gradient they pass on). On the CPU no rectified activation is ever
    whole in backward: it is remade image by image wherever it is needed (a whole one would be
    another K-fold wide tensor, a fresh mapping faulted in at every step). The running statistics
    are updated once, as nn.BatchNorm2d does.
    """
    params: list[Tensor | None] = []
    for bn, weight, bias in layers:
        if weight.shape[2:] != (1, 1):
            raise TypeError("batch_norm_relu_conv needs 1x1 convs")
        if bn.num_batches_tracked is not None:
            bn.num_batches_tracked.add_(1)
        params += [bn.weight, bn.bias, weight, bias]
    bns = [bn for bn, _, _ in layers]
    return _BatchNormReluConv.apply(make, bns, len(inputs), *inputs, *params)


class _BatchNormReluConv(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, make: Callable[..., Tensor], bns: list[nn.BatchNorm2d], n_inputs: int,
                *tensors: Tensor | None) -> Tensor:
        inputs, params = tensors[:n_inputs], tensors[n_inputs:]
        stats, kept = [], []
        with torch.no_grad():
            out = make(*inputs)
            size = out.numel()
            for i, (bn, (bn_weight, bn_bias, conv_weight, conv_bias)) in enumerate(zip(bns, _layer_params(params))):
                # a later layer's input is kept when it is much narrower than make's output (patchwise
                # gamma's hidden layer: a feature map, not K of them), so backward need not redo the
                # widest product to recompute it
                keep = i > 0 and out.numel() * KEEP_RATIO <= size
                kept.append(out if keep else None)
                # normalised in place unless kept or make's output is (a view of) an input
                overwrite = not keep and (i > 0 or not _shares_storage(out, inputs))
                rectified = out if overwrite else torch.empty_like(out)
                mean, invstd = batch_norm_relu(out, bn, bn_weight, bn_bias, out=rectified)
                del out
                out = conv1x1(rectified, conv_weight, conv_bias)
                del rectified
                stats += [mean, invstd]
        ctx.make, ctx.n_inputs, ctx.n_layers = make, n_inputs, len(bns)
        ctx.kept = [t is not None for t in kept]
        ctx.save_for_backward(*inputs, *params, *stats, *[t for t in kept if t is not None])
        return out

    @staticmethod
    @first_order_backward
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        saved = ctx.saved_tensors
        n_kept = sum(ctx.kept)
        end = len(saved) - n_kept
        inputs, params, stats = saved[: ctx.n_inputs], saved[ctx.n_inputs : end - 2 * ctx.n_layers], saved[end - 2 * ctx.n_layers : end]
        kept = iter(saved[end:])
        layers = list(_layer_params(params))
        leaves = [t.detach().requires_grad_(t.requires_grad) for t in inputs]
        with torch.enable_grad():
            x = ctx.make(*leaves)
        # in the parameters' dtype: under autocast the forward ran in a lower precision
        dtype = layers[0][2].dtype
        shape = (-1, *[1] * (x.dim() - 2))
        reduce_dims = [0, *range(2, x.dim())]
        # every layer's input, kept or recomputed (through conv1x1's own BN-ReLU, image by image), with
        # its BN's affine under the saved statistics; the rectified activations are remade image by
        # image as backward needs them (`conv1x1_relu_backward`), never whole
        acts, a = [], x.detach().to(dtype)
        for i, (bn_weight, bn_bias, conv_weight, conv_bias) in enumerate(layers):
            if ctx.kept[i]:
                a = next(kept).to(dtype)
            mean, invstd = stats[2 * i], stats[2 * i + 1]
            scale = invstd * bn_weight
            shift = bn_bias - mean * scale
            acts.append((a, scale, shift))
            if i + 1 < len(layers) and not ctx.kept[i + 1]:
                a = conv1x1(a, conv_weight, conv_bias, affine_relu=(scale, shift))
        del a
        g = grad.to(dtype)
        param_grads: list[Tensor | None] = []
        for i in reversed(range(len(layers))):
            bn_weight, _, conv_weight, conv_bias = layers[i]
            mean, invstd = stats[2 * i], stats[2 * i + 1]
            a, scale, shift = acts.pop()
            grad_y, grad_conv_weight = conv1x1_relu_backward(g, a, conv_weight, scale, shift)
            grad_conv_bias = g.sum(reduce_dims) if conv_bias is not None else None
            del g
            # BN's backward: its two per-channel sums, sum(grad_y) and sum(grad_y * (a - mean)) * invstd,
            # in one fused pass of native_batch_norm_backward told not to compute the input gradient
            # (that would be a new K-fold wide tensor, ~+10 % peak memory in SAN10's training step),
            # then the input gradient scale * grad_y + b * (a - mean) + c, in grad_y's buffer
            _, grad_bn_weight, grad_bn_bias = torch.ops.aten.native_batch_norm_backward(
                grad_y, a, bn_weight, None, None, mean, invstd, True, 0.0, [False, True, True])
            b, c = bn_backward_coefficients(scale, invstd, mean, grad_bn_weight, grad_bn_bias,
                                            grad_y.numel() // grad_y.shape[1], dtype)
            g = torch.addcmul(c.view(shape), grad_y, scale.view(shape), out=grad_y).addcmul_(a, b.view(shape))
            del a, grad_y
            param_grads = [grad_bn_weight, grad_bn_bias, grad_conv_weight, grad_conv_bias] + param_grads
        wanted = [t for t in leaves if t.requires_grad]
        grads = iter(torch.autograd.grad(x, wanted, g.to(x.dtype)) if wanted else ())
        grad_inputs = [next(grads) if t.requires_grad else None for t in leaves]
        return (None, None, None, *grad_inputs, *param_grads)


def bn_backward_coefficients(scale: Tensor, invstd: Tensor, mean: Tensor, grad_weight: Tensor, grad_bias: Tensor,
                             count: int, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
    """b and c of BN's input gradient scale * g + b * x + c (native_batch_norm_backward's formula),
    in `dtype`, worked out in float32 at least: in float16 scale * invstd * grad_weight overflows
    (to inf, then NaN gradients) before the division by count brings it back in range."""
    acc = torch.promote_types(dtype, torch.float32)
    scale, invstd, mean = scale.to(acc), invstd.to(acc), mean.to(acc)
    b = -scale * invstd * grad_weight.to(acc) / count
    c = -scale * grad_bias.to(acc) / count - b * mean
    return b.to(dtype), c.to(dtype)


def batch_norm_relu(x: Tensor, bn: nn.BatchNorm2d, weight: Tensor | None, bias: Tensor | None,
                    out: Tensor) -> tuple[Tensor, Tensor]:
    """relu(bn(x)) with x's batch statistics into `out`, which may be x itself (native_batch_norm
    always allocates its output, and fresh K-fold wide tensors are page-faulted in anew each step).
    Updates the running statistics as nn.BatchNorm2d (call after counting the step); returns
    (mean, invstd) as native_batch_norm does.
    """
    if x.numel() == x.shape[1]:  # nn.BatchNorm2d's check, made before the running statistics take a NaN variance
        raise ValueError(f"Expected more than 1 value per channel when training, got input size {x.shape}")
    mean, var = torch.batch_norm_update_stats(x, bn.running_mean, bn.running_var, bn_momentum(bn))
    invstd = torch.rsqrt(var + bn.eps)
    scale = invstd if weight is None else invstd * weight
    shift = -mean * scale if bias is None else bias - mean * scale
    shape = (-1, *[1] * (x.dim() - 2))
    torch.addcmul(shift.to(x.dtype).view(shape), x, scale.to(x.dtype).view(shape), out=out).relu_()
    return mean, invstd


def _shares_storage(t: Tensor, others: Sequence[Tensor | None]) -> bool:
    ptr = t.untyped_storage().data_ptr()
    return any(o is not None and o.untyped_storage().data_ptr() == ptr for o in others)


def _layer_params(params: Sequence[Tensor | None]) -> Iterator[tuple[Tensor, ...]]:
    """(bn weight, bn bias, conv weight, conv bias) of each layer from the flat list."""
    return (tuple(params[i : i + 4]) for i in range(0, len(params), 4))


def update_running_stats(bn: nn.BatchNorm2d, mean: Tensor, var: Tensor, count: int) -> None:
    """Update bn's running statistics with a batch's mean and biased variance over `count` values,
    as nn.BatchNorm2d does (the variance made unbiased); call after counting the step."""
    momentum = bn_momentum(bn)
    unbiased = var * (count / max(count - 1, 1))
    with torch.no_grad():
        bn.running_mean.lerp_(mean.to(bn.running_mean.dtype), momentum)
        bn.running_var.lerp_(unbiased.to(bn.running_var.dtype), momentum)


def bn_momentum(bn: nn.BatchNorm2d) -> float:
    """The running-average factor nn.BatchNorm2d uses this step (call after counting the step)."""
    if bn.momentum is None:  # cumulative moving average
        return 1.0 / float(bn.num_batches_tracked)
    return bn.momentum
