"""SAN: self-attention networks (Zhao, Jia, Koltun, CVPR 2020), as the official hszhao/SAN code builds them.

Network (official `model/san.py`): a 1x1 conv stem at full resolution, then five stages, each
MaxPool 2x2/2 -> 1x1 transition conv -> self-attention blocks -> BN -> ReLU, then average pooling
and a linear classifier. A block is a pre-activation bottleneck with the self-attention module
(SAM) in place of the 3x3 conv:  out = x + conv1x1(ReLU(BN(SAM(ReLU(BN(x)))))).

SAM on C channels, with phi, psi (C -> C/16) and beta (C -> C/4) 1x1 convs with bias:
- pairwise:  y_i = sum_{j in R(i)} softmax_j(gamma([delta(phi_i, psi_j), pos_ij]))  (.)  beta_j
- patchwise: y_i = sum_{j in R(i)} gamma(delta(x_R(i)))_j  (.)  beta_j   (no softmax, no position)
The transformations are separate convs (the official code), or shared (this project's reading of
the paper's shared-vs-separate ablation, whose exact variants are not in its reference: see
`SelfAttention.transform`): 'shared_relation' feeds phi's conv to both sides of delta
(psi = phi), 'shared' feeds beta's C -> C/4 conv to both sides as well (phi = psi = beta), so
delta and gamma's input are 4x wider there and gamma's hidden width stays the official one.
The position term pos_ij is p_i - p_j (relative, the official code), p_j (absolute, this project's
reading of the paper's ablation: see `SelfAttention._position_term`) or nothing, with p a learned
1x1 conv 2 -> 2 on the [x, y] pixel coordinates.
Attention weights have C/4/share_planes channels; value channel c uses weight channel
c mod (C/4/share_planes) (interleaved, as the official kernel). Module names follow the paper's
symbols; `suite.models.official` maps the official checkpoint keys onto them.

Implementation: the same function three ways, chosen per call (tests check they agree).
- inference (eval, no autograd): gamma runs on chunks of footprint positions with its BNs folded
  (`suite.ops.gamma`), the stem a block at a time with its BN folded into the conv, 2x2
  pooling on strided views; within a stage each block adds its branch into the stage's own
  tensor, its first BN-ReLU made image by image inside SAM's input conv;
- training: gamma (BN-ReLU-conv-BN-ReLU-conv), each block's BN-ReLU-conv pairs and the stem run as
  single ops that keep only their inputs and BN statistics for backward and recompute the rest
  (`batch_norm_relu_conv`; gamma's K-fold wide activations are never kept);
- otherwise (tracing for FLOP counts, gradients in eval, the 'unfold' reference backend): the
  official dataflow with plain modules, materialising every relation tensor.
The fused paths call no submodule's forward, so a module takes them only when `_fusable`: none of
its submodules has hooks or was replaced (SyncBatchNorm, FrozenBatchNorm2d, ...), and every BN is
in the state the path assumes (training: batch statistics, running ones updated; inference:
running statistics). Anything else, such as frozen BNs in a training model or test-time batch
statistics in an eval one, runs as plain modules and gets what eager PyTorch gives.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.modules import module as _modules

from suite.errors import SuiteError, TooSmall
from suite.models.layers import positive
from suite.models.papers import SAN_TABLE2
from suite.models.registry import register_model
from suite.ops import (
    Window,
    aggregation,
    current_backend,
    pairwise_relation,
    pairwise_width,
    patchwise_relation,
    patchwise_width,
    position_grid,
    relative_grid,
    use_backend,
)
from suite.ops.autograd import first_order_backward
from suite.ops.conv import conv1x1
from suite.ops.gamma import (
    batch_norm_relu_conv,
    bn_affine,
    bn_backward_coefficients,
    concatenation_weights_inference,
    pairwise_weights_inference,
    update_running_stats,
)
from suite.ops.relations import PairwiseRelation, PatchwiseRelation
from suite.ops.window import Padding
from suite.ops.workspace import Workspace, using, workspace

Mode = Literal["pairwise", "patchwise"]
Gamma = Literal["official", "linear", "lrl", "lrlrl"]
# The position term gamma sees beside delta: p_i - p_j, p_j or nothing (`SelfAttention._position_term`).
PositionEncoding = Literal["relative", "absolute", "none"]
PatchwisePosition = Literal["none"]  # the patch ordering encodes position
# Which of phi, psi, beta are one conv (`SelfAttention.transform`): none, phi = psi, or all three.
Transforms = Literal["separate", "shared_relation", "shared"]

# Blocks per stage (official config/imagenet/*.yaml); stage widths 64, 256, 512, 1024, 2048.
_LAYERS = {10: (2, 1, 2, 4, 1), 15: (3, 2, 3, 5, 2), 19: (3, 3, 4, 6, 3)}
_WIDTHS = (64, 256, 512, 1024, 2048)
_SMALLEST_INPUT = 1 << len(_WIDTHS)  # the stem and each later stage halve the map (max-pool 2x2, floor)
_STEM_WIDTH = 64
_FIRST_FOOTPRINT = 3  # every official config uses [3, 7, 7, 7, 7]: stage 0 stays 3x3


def make_gamma(kind: str, in_channels: int, hidden: int, out_channels: int) -> nn.Sequential:
    """The mapping gamma, applied pointwise (1x1 convs) to the relation tensor.

    - official: BN(in) - ReLU - conv(in -> hidden, no bias) - BN(hidden) - ReLU - conv(hidden -> out)
      (the released code, hszhao/SAN#17; `hidden` is C/16 pairwise and C/32 patchwise)
    - linear:   conv(in -> out)                                        (the paper's "L")
    - lrl:      conv(in -> hidden) - ReLU - conv(hidden -> out)        (the paper's "L-R-L")
    - lrlrl:    conv(in -> hidden) - ReLU - conv(hidden -> hidden) - ReLU - conv(hidden -> out)
    The paper's variants have no normalisation and take the official hidden width; every conv
    except the official first one has a bias. Patchwise, 'linear' has no hidden layer to narrow
    the patch: one conv maps all (K+1) C/16 channels straight to the K C/32 weights, so
    san10_patchwise grows from 11.8 M to 53.5 M parameters (the paper's mapping ablation, the
    `san_gamma` spec, is pairwise).
    """
    if kind == "official":
        return nn.Sequential(
            nn.BatchNorm2d(in_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(in_channels, hidden, 1, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, out_channels, 1),
        )
    if kind == "linear":
        return nn.Sequential(nn.Conv2d(in_channels, out_channels, 1))
    if kind == "lrl":
        return nn.Sequential(nn.Conv2d(in_channels, hidden, 1), nn.ReLU(inplace=True), nn.Conv2d(hidden, out_channels, 1))
    if kind == "lrlrl":
        return nn.Sequential(
            nn.Conv2d(in_channels, hidden, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, hidden, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, out_channels, 1),
        )
    raise SuiteError(f"unknown gamma {kind!r}", key="gamma", choices=["official", "linear", "lrl", "lrlrl"])


class SelfAttention(nn.Module):
    """The official SAM: relation delta, mapping gamma, aggregation over a k x k footprint."""

    def __init__(
        self,
        channels: int,
        *,
        mode: Mode,
        relation: str,
        kernel_size: int,
        position_encoding: PositionEncoding,
        gamma: str,
        share_planes: int,
        padding: Padding,
        transforms: Transforms = "separate",
    ) -> None:
        super().__init__()
        rel, mid = channels // 16, channels // 4
        self.mode, self.relation, self.kernel_size, self.padding = mode, relation, kernel_size, padding
        self.position_encoding = position_encoding
        self.gamma_kind = gamma
        self.transforms = transforms
        self.weight_channels = mid // share_planes
        footprint = kernel_size**2
        # A shared role is no module of its own (None): the one conv is registered, and counted, once.
        # Built in the order phi, psi, beta, so 'separate' draws its initial weights as before.
        self.phi = nn.Conv2d(channels, rel, 1) if transforms != "shared" else None
        self.psi = nn.Conv2d(channels, rel, 1) if transforms == "separate" else None
        self.beta = nn.Conv2d(channels, mid, 1)
        delta_in = mid if transforms == "shared" else rel  # the width of phi(x) and psi(x)
        if mode == "pairwise":
            encoded = position_encoding != "none"  # relative and absolute: both 2 channels, the same parameters
            width = pairwise_width(relation, delta_in) + (2 if encoded else 0)
            self.gamma = make_gamma(gamma, width, rel, self.weight_channels)
            # p = position(grid): a learned 1x1 conv 2 -> 2 on the normalised [x, y] coordinates.
            self.position = nn.Conv2d(2, 2, 1) if encoded else None
        else:
            width = patchwise_width(relation, delta_in, footprint)
            self.gamma = make_gamma(gamma, width, self.weight_channels, footprint * self.weight_channels)
            self.position = None
        _record_layout(self.gamma)
        _record_layout(self)

    def forward(self, x: Tensor) -> Tensor:
        if _inference() and _fusable(self, training=False):
            # phi, psi and beta as one conv: x is read once, one matrix product instead of three
            weight, bias = self.input_conv()
            return self.attend(*self.split(conv1x1(x, weight, bias)))
        return self.attend(*self.transform(x))

    def transform(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(phi(x), psi(x), beta(x)) with the plain modules; a shared role is the same tensor.

        'separate' is the official code's three convs. The paper also ablates shared transformations
        but the reference holds neither its code nor an exact definition of the shared variants, so
        these are this project's reading: 'shared_relation' uses phi's conv for psi as well
        (delta(phi(x_i), phi(x_j)): one conv fewer, delta and gamma as official); 'shared' uses one
        conv for all three. One conv has one width, and beta's C/4 is the one the aggregation needs,
        so 'shared' runs delta on C/4 channels (gamma's input 4x wider, its hidden width kept).
        Every path takes its inputs from here or from `split`, and works with phi and psi being one
        tensor: nothing writes into them in place, and autograd sums both roles' gradients into the
        one conv.
        """
        return self._roles(*(conv(x) for conv in self._convs()))

    def _convs(self) -> list[nn.Conv2d]:
        """The distinct convs among phi, psi and beta, in that order."""
        return [conv for conv in (self.phi, self.psi, self.beta) if conv is not None]

    def _roles(self, *outputs: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(phi_x, psi_x, beta_x) from the outputs of `_convs`."""
        if self.transforms == "shared":
            (beta,) = outputs
            return beta, beta, beta
        if self.transforms == "shared_relation":
            phi, beta = outputs
            return phi, phi, beta
        phi, psi, beta = outputs
        return phi, psi, beta

    def input_conv(self) -> tuple[Tensor, Tensor]:
        """The distinct convs of phi, psi and beta as one 1x1 conv (weight, bias): its output
        `split`s into the three roles."""
        convs = self._convs()
        return torch.cat([c.weight for c in convs]), torch.cat([c.bias for c in convs])

    def split(self, output: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(phi_x, psi_x, beta_x) from `input_conv`'s output; a shared role is the same tensor."""
        return self._roles(*output.split([c.out_channels for c in self._convs()], 1))

    def attend(self, phi: Tensor, psi: Tensor, beta: Tensor) -> Tensor:
        """SAM's output from phi(x), psi(x) and beta(x)."""
        if _inference() and _fusable(self, training=False):
            weights = self._weights_streamed(phi, psi)
        else:
            weights = self._weights(phi, psi)
        return aggregation(beta, weights, self.kernel_size, padding=self.padding)

    def _weights(self, phi: Tensor, psi: Tensor) -> Tensor:
        """Attention weights (N, Cw, K, H*W) from the whole relation tensor (official dataflow).

        In training with the official gamma, the whole of gamma runs as one op that keeps only phi,
        psi (and the position term), its BN statistics and (patchwise) its narrow hidden layer for backward:
        the K-fold wide relation tensor and gamma's wide activations are recomputed from them, not
        kept (nor their normalised and rectified copies).
        """
        n, _, h, w = phi.shape
        k, pad = self.kernel_size, self.padding
        if self.mode == "patchwise":
            def relation(phi: Tensor, psi: Tensor) -> Tensor:  # (N, width, H, W)
                return patchwise_relation(phi, psi, self.relation, k, padding=pad)

            inputs: tuple[Tensor, ...] = (phi, psi)
        else:
            def relation(phi: Tensor, psi: Tensor, *position: Tensor) -> Tensor:  # (N, width, K, H*W)
                return pairwise_relation(phi, psi, self.relation, k, padding=pad,
                                         position=position[0] if position else None)

            inputs = (phi, psi) if self.position is None else (phi, psi, self._position_term(phi, streamed=False))
        if self._fused_training():
            bn1, _, conv1, bn2, _, conv2 = self.gamma
            logits = batch_norm_relu_conv(relation, [(bn1, conv1.weight, conv1.bias), (bn2, conv2.weight, conv2.bias)],
                                          *inputs)
        else:
            logits = self.gamma(relation(*inputs))
        if self.mode == "patchwise":
            # gamma's output channel o is weight channel o // K at footprint position o % K (official view).
            return logits.view(n, self.weight_channels, k * k, h * w)
        return logits.softmax(dim=2)  # over the footprint

    def _fused_training(self) -> bool:
        return _training_ops() and self.gamma_kind == "official" and _fusable(self.gamma, training=True)

    def _position_term(self, like: Tensor, streamed: bool) -> Tensor:
        """The position channels of gamma's input (1, 2, K, H*W), after delta's: the same for every
        image, so computed once for the batch. p = A g + b is the learned encoding of the grid g.

        - relative (official): p_i - p_j. `streamed` (`_weights_streamed`, a `_fusable` module's
          inference) with reflection padding as A (g_i - g_j) from the cached coordinate
          differences (a reflected neighbour is a pixel of the map), without calling the position
          conv: elsewhere it is called, so its hooks fire. Zero
          padding makes p_j = 0 at outside neighbours, so p_i - p_j = A g_i + b there: computed as
          the official code does.
        - absolute: p_j, the encoding of the neighbour itself, padded as p is for the relative term
          (reflection: the reflected pixel's p; zeros: 0 outside). Not [p_i, p_j]: gamma's first
          linear layer could form p_i - p_j from that, so "absolute" would contain "relative" and the
          ablation would compare nothing. p_j has the relative term's width, hence its parameters,
          so the ablation changes only what is encoded. The official code has no absolute variant
          and the paper does not define its own exactly: p_j is this project's choice. It needs no
          inference shortcut: one conv and one unfold of a 2-channel map.
        """
        h, w = like.shape[-2:]
        window = Window(self.kernel_size, padding=self.padding)
        if streamed and self.position_encoding == "relative" and self.padding == "reflect":
            grid = relative_grid(h, w, window, device=like.device, dtype=like.dtype)
            return torch.matmul(self.position.weight.flatten(1).to(like.dtype), grid.flatten(1)).view(1, *grid.shape)
        p = self.position(position_grid(h, w, device=like.device, dtype=like.dtype))
        if self.position_encoding == "absolute":
            return window.unfold(p)
        return pairwise_relation(p, p, "subtraction", self.kernel_size, padding=self.padding)

    def _weights_streamed(self, phi: Tensor, psi: Tensor) -> Tensor:
        """The same weights in inference: gamma piecewise, its BNs folded, in place, into the
        model's workspace for this thread (`attend` consumes them before any other layer runs)."""
        window = Window(self.kernel_size, padding=self.padding)
        n, _, h, w = phi.shape
        if self.mode == "pairwise":
            position = None if self.position is None else self._position_term(phi, streamed=True)
            out = workspace("weights", (window.size, n, self.weight_channels, h * w), phi)
            return pairwise_weights_inference(phi, psi, position, self.gamma, self.relation, window,
                                              self.weight_channels, out=out)
        if self.relation == "concatenation":
            out = workspace("weights", (n, window.size, self.weight_channels, h * w), phi)
            return concatenation_weights_inference(phi, psi, self.gamma, window, self.weight_channels, out=out)
        return self._weights(phi, psi)


def _eager() -> bool:
    """Run eagerly on the default backend: not traced (torch.jit, fvcore), compiled or exported.

    A traced graph should count or keep the architecture, not the shortcuts; torch.compile and
    torch.export trace with fake tensors, which the shortcuts' data-dependent checks cannot read
    and which the inference workspace would otherwise keep for the next eager call. The naive
    'unfold' backend is the straightforward reference the benchmark compares against.
    """
    return not torch.jit.is_tracing() and not torch.compiler.is_compiling() and current_backend() == "shift"


def _training_ops() -> bool:
    """Autograd on, eager: the memory-light training ops may run."""
    return torch.is_grad_enabled() and _eager()


def _inference() -> bool:
    """No autograd, eager: the fast inference implementations may run. They compute the same
    values; autograd needs the official dataflow's saved tensors."""
    return not torch.is_grad_enabled() and _eager()


def _bn_relu(bn: nn.BatchNorm2d, x: Tensor, inplace: bool = False) -> Tensor:
    """ReLU(BN(x)); in inference without autograd, overwrites x when allowed (no new big tensor)."""
    if not inplace or bn.training or not _inference():
        return F.relu(bn(x), inplace=True)
    scale, shift = bn_affine(bn)
    return torch.addcmul(shift[:, None, None], x, scale[:, None, None], out=x).relu_()


class Block(nn.Module):
    """Pre-activation bottleneck with SAM in place of the 3x3 conv (official `Bottleneck`)."""

    def __init__(self, channels: int, **sam: object) -> None:
        super().__init__()
        mid = channels // 4
        self.bn1 = nn.BatchNorm2d(channels)
        self.sam = SelfAttention(channels, **sam)  # type: ignore[arg-type]
        self.bn2 = nn.BatchNorm2d(mid)
        self.conv = nn.Conv2d(mid, channels, 1)
        _record_layout(self)

    def forward(self, x: Tensor) -> Tensor:
        if _training_ops() and _fusable(self, training=True):
            # BN-ReLU-conv as one op each, keeping only their inputs (x, SAM's output) for backward,
            # not also the normalised and rectified copies
            weight, bias = self.sam.input_conv()
            out = self.sam.attend(*self.sam.split(batch_norm_relu_conv(nn.Identity(), [(self.bn1, weight, bias)], x)))
            return batch_norm_relu_conv(nn.Identity(), [(self.bn2, self.conv.weight, self.conv.bias)], out) + x
        if _inference() and _fusable(self, training=False):
            return self.add_branch_(x.clone())
        return self.conv(_bn_relu(self.bn2, self.sam(_bn_relu(self.bn1, x)))) + x

    def add_branch_(self, x: Tensor) -> Tensor:
        """x + the residual branch, written over x: inference of a `_fusable` block only, on a
        tensor nothing else holds (`Stage` passes its own), so the output needs no fresh tensor.

        The convs around SAM make their BN-ReLU image by image (the normalised map is never whole).
        """
        weight, bias = self.sam.input_conv()
        out = self.sam.attend(*self.sam.split(conv1x1(x, weight, bias, affine_relu=bn_affine(self.bn1))))
        return conv1x1(out, self.conv.weight, self.conv.bias, add_to=x, affine_relu=bn_affine(self.bn2))


def _fusable(module: nn.Module, training: bool) -> bool:
    """Whether a fused path, which calls none of `module`'s submodules, computes what calling them
    would: no hooks anywhere (forward hooks would not run; in training, backward hooks would not
    either), the submodules as built (same types, places and conv geometry: a 3x3 or strided conv,
    a conv without bias or an nn.Identity put in place of a ReLU is computed only by calling it),
    and every BN affine and in the paths' state (`training`: batch statistics, running ones
    updated; else running statistics)."""
    if _modules._global_forward_hooks or _modules._global_forward_pre_hooks:
        return False
    if training and (_modules._global_backward_hooks or _modules._global_backward_pre_hooks):
        return False
    for m in module.modules():
        if m._forward_hooks or m._forward_pre_hooks or type(m) not in _FUSABLE_TYPES:
            return False
        if training and (m._backward_hooks or m._backward_pre_hooks):
            return False
        if type(m) is nn.BatchNorm2d and (
            m.training != training or not m.affine or m.running_mean is None
            or (training and not m.track_running_stats)
        ):
            return False
    return getattr(module, "_built", None) == _layout(module)


def _record_layout(module: nn.Module) -> None:
    """Remember `module`'s layout as built, for `_fusable` to compare against."""
    module._built = _layout(module)


def _layout(module: nn.Module) -> tuple[object, ...]:
    """Each submodule's place, type and what shapes its computation beyond its parameters."""
    layout: list[object] = []
    for name, m in module.named_modules():
        layout += [name, type(m)]
        if isinstance(m, nn.Conv2d):
            layout += [m.kernel_size, m.stride, m.padding, m.dilation, m.groups, m.bias is not None, m.padding_mode]
        elif isinstance(m, nn.MaxPool2d):
            layout += [m.kernel_size, m.stride, m.padding, m.dilation, m.ceil_mode]
    return tuple(layout)


class MaxPool2x2(nn.MaxPool2d):
    """MaxPool2d(2, 2); in inference, as two pairwise maxima of strided views: the same values,
    3-8x faster than PyTorch's NCHW max-pool kernel on CPU. Autograd and traced graphs use the
    max-pool op itself (its backward routes a tie to one input, as the official model's)."""

    def __init__(self) -> None:
        super().__init__(2, 2)

    def forward(self, x: Tensor) -> Tensor:
        if not _inference():
            return super().forward(x)
        return _max_pool_2x2(x)


def _max_pool_2x2(x: Tensor, out: Tensor | None = None) -> Tensor:
    """MaxPool2d(2, 2)'s values as two pairwise maxima of strided views (into `out` if given)."""
    h, w = x.shape[-2] // 2 * 2, x.shape[-1] // 2 * 2  # floor, as MaxPool2d
    rows = torch.maximum(x[..., 0:h:2, :w], x[..., 1:h:2, :w])
    return torch.maximum(rows[..., 0::2], rows[..., 1::2], out=out)


def _pool_routes(x: Tensor, out: Tensor) -> Iterator[tuple[int, int, Tensor]]:
    """(dy, dx, hit) for each position of the 2x2 windows of x that `out` pooled: hit (out's shape)
    marks where that position's value is the one MaxPool2d routes the gradient to, the first
    maximum in its scan order (row-major within the window, as its `val > max` update keeps the
    first of equal values)."""
    h, w = out.shape[-2] * 2, out.shape[-1] * 2
    taken = None
    for dy, dx in ((0, 0), (0, 1), (1, 0), (1, 1)):
        hit = x[..., dy:h:2, dx:w:2] == out
        if taken is None:
            taken = hit
        else:
            hit.logical_and_(taken.logical_not())
            taken.logical_or_(hit)
        yield dy, dx, hit


class Stage(nn.Module):
    """[MaxPool 2x2/2] -> 1x1 transition conv (no bias, no BN) -> blocks -> BN -> ReLU.

    The first stage's pool is the stem's: it runs there, fused with the stem.
    """

    def __init__(self, in_channels: int, channels: int, depth: int, pool: bool, **sam: object) -> None:
        super().__init__()
        self.pool = MaxPool2x2() if pool else nn.Identity()
        self.transition = nn.Conv2d(in_channels, channels, 1, bias=False)
        self.blocks = nn.Sequential(*(Block(channels, **sam) for _ in range(depth)))
        self.norm = nn.BatchNorm2d(channels)
        _record_layout(self)

    def forward(self, x: Tensor) -> Tensor:
        x = self.pool(x)
        if not (_inference() and _fusable(self, training=False)):
            return _bn_relu(self.norm, self.blocks(self.transition(x)))
        x = conv1x1(x, self.transition.weight)
        for block in self.blocks:
            x = block.add_branch_(x)  # in place: x is this stage's own tensor
        return _bn_relu(self.norm, x, inplace=True)


class Stem(nn.Module):
    """1x1 conv 3 -> 64 (no bias) at full resolution, BN, ReLU (official `conv_in`, `bn_in`), then
    the first stage's 2x2 max-pool.

    Its 64-channel full-resolution maps are SAN's largest tensors (100 MiB each at batch 8, 224 px):
    inference and training run it a block at a time (`_stem_blocks`: a band of rows of one image on
    the CPU) with its BN folded into the conv, so none is ever whole, and training keeps only the
    input for backward (`_StemTraining`).
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, _STEM_WIDTH, 1, bias=False)
        self.bn = nn.BatchNorm2d(_STEM_WIDTH)
        self.pool = MaxPool2x2()
        _record_layout(self)

    def forward(self, x: Tensor) -> Tensor:
        if _inference() and _fusable(self, training=False):
            scale, shift = bn_affine(self.bn)
            return _stem_pooled(x, *_folded(self.conv.weight, scale, shift))
        if _training_ops() and _fusable(self, training=True):
            if self.bn.num_batches_tracked is not None:
                self.bn.num_batches_tracked.add_(1)
            return _StemTraining.apply(x, self.conv.weight, self.bn, self.bn.weight, self.bn.bias)
        return self.pool(F.relu(self.bn(self.conv(x)), inplace=True))


_STEM_CHUNK_ELEMENTS = 2**22  # 16 MiB of float32: below glibc's largest mmap threshold, so reused
_STEM_BAND_ELEMENTS = 2**19  # 2 MiB of float32, 36 rows of 224 px: stays in cache through the three steps
_STEM_BLOCK_ELEMENTS = 2**25  # off the CPU: 128 MiB of float32, whole images


def _stem_block_shape(x: Tensor) -> tuple[int, int]:
    """(images, rows) of a block of the stem's 64-channel map: on the CPU one image's band of rows
    of about _STEM_BAND_ELEMENTS elements, which stays in cache through conv, ReLU and pool;
    elsewhere as many whole images as fit _STEM_BLOCK_ELEMENTS (few kernel launches, bounded memory)."""
    _, _, h, w = x.shape
    if x.device.type == "cpu":
        return 1, max(2, _STEM_BAND_ELEMENTS // (_STEM_WIDTH * w) // 2 * 2)
    return max(1, _STEM_BLOCK_ELEMENTS // (_STEM_WIDTH * max(h, 1) * w)), max(h // 2 * 2, 2)


def _stem_blocks(x: Tensor) -> Iterator[tuple[slice, slice]]:
    """(images, rows) blocks (`_stem_block_shape`) that cover x's even rows: whole pooling windows."""
    n, h = x.shape[0], x.shape[2] // 2 * 2  # pooling floors
    images, rows = _stem_block_shape(x)
    for i in range(0, n, images):
        for r in range(0, h, rows):
            yield slice(i, i + images), slice(r, min(r + rows, h))


def _folded(conv_weight: Tensor, scale: Tensor, shift: Tensor) -> tuple[Tensor, Tensor]:
    """(weight, bias) of the conv with the per-channel affine scale * conv + shift folded in, in the
    conv's dtype: the stem's conv and BN as one conv, as forward and backward make it."""
    return (conv_weight * scale.view(-1, 1, 1, 1)).to(conv_weight.dtype), shift.to(conv_weight.dtype)


def _stem_pooled(x: Tensor, weight: Tensor, shift: Tensor) -> Tensor:
    """MaxPool2x2(ReLU(conv1x1(x, weight, shift))) a block at a time (`_stem_blocks`), the BN folded
    into the conv (`_folded`): no full-resolution map is made whole."""
    n, _, h, w = x.shape
    out = x.new_empty((n, _STEM_WIDTH, h // 2, w // 2))
    for images, rows in _stem_blocks(x):
        block = conv1x1(x[images, :, rows], weight, shift).relu_()
        _max_pool_2x2(block, out=out[images, :, rows.start // 2 : rows.stop // 2])
    return out


def _channel_moments(x: Tensor) -> tuple[Tensor, Tensor]:
    """(mean, covariance) of x's channels over the batch and pixels, in float64: (C,), (C, C)."""
    x = x.double()
    mean = x.mean((0, 2, 3))
    centred = (x - mean[:, None, None]).transpose(0, 1).reshape(x.shape[1], -1)
    return mean, centred @ centred.t() / centred.shape[1]


class _StemTraining(torch.autograd.Function):
    """MaxPool2x2(ReLU(BN(conv1x1(x)))), training-mode BN, keeping only x, the BN statistics and
    x's 3 x 3 channel covariance.

    No full-resolution 64-channel map is ever whole (100 MiB each at batch 8, 224 px; six of them
    were once the step's peak memory, and each one is a fresh mapping whose pages are faulted in
    at every step). The conv is linear, so what BN needs of its output z = W x over the batch
    follows from x's channel mean m and covariance S: z's mean is W m and its variance
    diag(W S W^T). Forward takes them from x (3 channels), then normalises, rectifies and pools a
    block at a time (`_stem_pooled`). Backward remakes the blocks, routes the gradient g w.r.t.
    BN's output back through the ReLU and the pool, one window position at a time, and only sums
    it: sum(g) and G = sum(g (x - m)^T) (64 x 3). With a = BN's scale, the standard BN
    backward reduces to grad_bn_weight = invstd * rowsum(W * G), grad_bn_bias = sum(g) and
    grad_W = a * (G - (invstd * grad_bn_weight) * W S). Only an input gradient (an attack's) needs
    g per pixel: then it is kept whole, and a second pass turns it into BN's input gradient.
    """

    @staticmethod
    def forward(ctx, x: Tensor, conv_weight: Tensor, bn: nn.BatchNorm2d, bn_weight: Tensor, bn_bias: Tensor) -> Tensor:
        with torch.no_grad():
            mean_x, cov = _channel_moments(x)
            w = conv_weight.flatten(1).double()
            mean, var = w @ mean_x, ((w @ cov) * w).sum(1)
            update_running_stats(bn, mean, var, x.numel() // x.shape[1])
            invstd = torch.rsqrt(var + bn.eps)
            scale = invstd * bn_weight.double()
            out = _stem_pooled(x, *_folded(conv_weight, scale, bn_bias.double() - mean * scale))
        ctx.save_for_backward(x, conv_weight, bn_weight, bn_bias, mean, invstd, mean_x, cov)
        return out

    @staticmethod
    @first_order_backward
    def backward(ctx, grad: Tensor) -> tuple[Tensor | None, ...]:
        x, conv_weight, bn_weight, bn_bias, mean, invstd, mean_x, cov = ctx.saved_tensors
        n, _, h, w = x.shape
        scale = invstd * bn_weight.double()
        # the forward's own rectified map, recomputed: its BN folded into the conv as there
        weight, shift = _folded(conv_weight, scale, bn_bias.double() - mean * scale)
        keep = ctx.needs_input_grad[0]  # g whole for the input gradient's second pass
        if keep:
            g = torch.zeros((n, _STEM_WIDTH, h, w), dtype=x.dtype, device=x.device)
        sum_g = torch.zeros(_STEM_WIDTH, dtype=torch.float64, device=x.device)
        moments = torch.zeros((_STEM_WIDTH, x.shape[1]), dtype=torch.float64, device=x.device)  # G
        centred = x - mean_x.to(x.dtype)[:, None, None]
        for images, rows in _stem_blocks(x):  # as forward made them
            rectified = conv1x1(x[images, :, rows], weight, shift).relu_()
            pooled = _max_pool_2x2(rectified)
            # ReLU's backward first, on the pooled map: the routed maximum is positive iff the pooled one is
            grad_pooled = grad[images, :, rows.start // 2 : rows.stop // 2].to(x.dtype).mul(pooled > 0)
            sum_g += grad_pooled.sum((0, 2, 3), dtype=torch.float64)
            # g is grad_pooled routed to one position per window: G from each position's share
            for dy, dx, hit in _pool_routes(rectified, pooled):
                routed = grad_pooled * hit
                at = (images, slice(None), slice(rows.start + dy, rows.stop, 2), slice(dx, w // 2 * 2, 2))
                moments += torch.einsum("bcij,bkij->ck", routed, centred[at]).double()
                if keep:
                    g[at] = routed
        w64 = conv_weight.flatten(1).double()
        grad_bn_weight = invstd * (w64 * moments).sum(1)
        grad_weight = scale[:, None] * (moments - (invstd * grad_bn_weight)[:, None] * (w64 @ cov))
        grad_x = None
        if keep:  # grad_x = W^T (a g + b (z - mean) + c), BN's input gradient in g's place
            b, c = bn_backward_coefficients(scale, invstd, mean, grad_bn_weight, sum_g, n * h * w, x.dtype)
            a, b, c = scale.to(x.dtype)[:, None, None], b[:, None, None], c[:, None, None]
            grad_x = torch.empty_like(x)
            step = max(1, _STEM_CHUNK_ELEMENTS // (_STEM_WIDTH * h * w))
            for start in range(0, n, step):
                part = slice(start, start + step)
                grad_conv = g[part].mul_(a).addcmul_(conv1x1(x[part], conv_weight), b).add_(c)
                grad_x[part] = conv1x1(grad_conv, conv_weight.flatten(1).t()[..., None, None])
        dtype = conv_weight.dtype
        return (grad_x, grad_weight.to(dtype).view_as(conv_weight), None, grad_bn_weight.to(bn_weight.dtype),
                sum_g.to(bn_bias.dtype))


# what the fused paths implement (`_fusable`); MaxPool2x2 and the convs' own forward are called
_FUSABLE_TYPES = frozenset({SelfAttention, Block, Stage, Stem, MaxPool2x2, nn.Sequential, nn.Conv2d, nn.BatchNorm2d,
                            nn.ReLU, nn.Identity})


class SAN(nn.Module):
    """hszhao/SAN's network (`model/san.py`): a 1x1 stem at full resolution, then five stages of
    max-pool, 1x1 transition and self-attention blocks, each stage ending in BN-ReLU. Build it
    through the registry (`create_model("san10_pairwise", ...)`), which checks the options against
    each other and the input size before any layer exists."""

    def __init__(
        self,
        layers: tuple[int, ...],
        *,
        mode: Mode,
        relation: str,
        footprint: int,
        position_encoding: PositionEncoding,
        gamma: str,
        share_planes: int,
        padding: Padding,
        transforms: Transforms,
        num_classes: int,
    ) -> None:
        super().__init__()
        self.stem = Stem()
        sam = dict(mode=mode, relation=relation, position_encoding=position_encoding, gamma=gamma,
                   share_planes=share_planes, padding=padding, transforms=transforms)
        stages, in_channels = [], _STEM_WIDTH
        for i, (depth, channels) in enumerate(zip(layers, _WIDTHS)):
            kernel_size = _FIRST_FOOTPRINT if i == 0 else footprint
            stages.append(Stage(in_channels, channels, depth, pool=i > 0, kernel_size=kernel_size, **sam))
            in_channels = channels
        self.stages = nn.Sequential(*stages)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(in_channels, num_classes)

        self.workspace = Workspace()  # inference's scratch buffers (suite.ops.workspace), not state

    def forward(self, x: Tensor) -> Tensor:
        # PyTorch's own error for a map pooled to nothing differs with and without autograd and names
        # no size; reflection padding's larger need is said by the op that pads.
        if min(x.shape[-2:]) < _SMALLEST_INPUT:
            raise SuiteError(f"inputs of {x.shape[-2]}x{x.shape[-1]} px are too small: SAN halves its maps "
                             f"{len(_WIDTHS)} times, so each side needs at least {_SMALLEST_INPUT} px")
        # An empty batch (a rank's share of an uneven split) takes the reference ops, which handle it
        # as PyTorch's layers do; the fast paths' layouts and chunking assume an image.
        reference = use_backend("unfold") if x.shape[0] == 0 else contextlib.nullcontext()
        with reference, using(self.workspace) if _inference() else contextlib.nullcontext():  # inference's only
            x = self.stages(self.stem(x))
        return self.fc(torch.flatten(self.avgpool(x), 1))

    def train(self, mode: bool = True) -> SAN:
        if mode:  # training never uses the inference buffers: give their memory back
            self.workspace.release()
        return super().train(mode)


def _san(depth: int, mode: Mode, **options: Any) -> SAN:
    return SAN(_LAYERS[depth], mode=mode, **options)


_POSITIVE = positive("num_classes")


def _check(options: Mapping[str, Any], input_size: int | None) -> None:
    """The registry check of every SAN model: what type hints cannot express (the relations and
    position encodings a mode takes are its builders' Literals)."""
    footprint = options["footprint"]
    if footprint < 1 or footprint % 2 == 0:
        raise SuiteError(f"footprint must be an odd integer >= 1, got {footprint}", key="footprint")
    share_planes, smallest_mid = options["share_planes"], _WIDTHS[0] // 4
    if share_planes < 1 or smallest_mid % share_planes:
        valid_shares = [s for s in range(1, smallest_mid + 1) if smallest_mid % s == 0]
        raise SuiteError(
            f"invalid value {share_planes!r}: share_planes must divide every stage's value width "
            f"(the smallest is {smallest_mid})",
            key="share_planes",
            choices=valid_shares,
        )
    # transforms needs no check: every value combines with every relation, gamma and encoding
    # ('shared' only widens what delta and gamma see)
    _POSITIVE(options, input_size)
    if input_size is not None:
        _check_input_size(input_size, footprint, options["padding"])


def _check_input_size(size: int, footprint: int, padding: Padding) -> None:
    """Every stage's map must exist (side > 0) and, with reflection padding, exceed the footprint's pad.

    The stem and each later stage halve the map (max-pool 2x2, floor): stage i sees size // 2**(i+1).
    """
    pads = [(k - 1) // 2 if padding == "reflect" else 0 for k in [_FIRST_FOOTPRINT] + [footprint] * (len(_WIDTHS) - 1)]
    need = max((pad + 1) << (i + 1) for i, pad in enumerate(pads))
    if size >= need:
        return
    i = next(i for i, pad in enumerate(pads) if size >> (i + 1) <= pad)
    side = size >> (i + 1)
    if size < _SMALLEST_INPUT:  # too small for any padding
        raise SuiteError(f"inputs of {size} px are too small: SAN halves its maps {len(_WIDTHS)} times, so it "
                         f"needs inputs of at least {_SMALLEST_INPUT} px" +
                         (f" ({need} px with {padding} padding)" if need > _SMALLEST_INPUT else ""))
    problem = f"inputs of {size} px leave stage {i} a {side}x{side} map, too small to reflect-pad by {pads[i]} px"
    raise TooSmall(f"{problem}; set padding to 'zeros' or use inputs of at least {need} px", problem=problem,
                   smallest=need, key="padding")


def _paper(params_m: float, gmacs: float, top1: float, top5: float) -> dict[str, object]:
    # hszhao/SAN README "Overall result" (accuracies as errors: 100 - acc).
    return {"params_m": params_m, "gmacs": gmacs, "top1_err": round(100 - top1, 1),
            "top5_err": round(100 - top5, 1), "source": SAN_TABLE2}


# Options: relation (pairwise: summation | subtraction | concatenation | hadamard | dot;
# patchwise: star | clique | concatenation), footprint k (stages 1-4; stage 0 is 3x3),
# position_encoding (relative | absolute | none; pairwise only, relative by default as the official code;
# strings only: one value per meaning, so one run id), gamma, share_planes, padding
# ('zeros' allows inputs below 128 px, where reflection padding of the last stage is impossible),
# transforms (separate | shared_relation | shared; separate by default as the official code).


@register_model(label="SAN10-pair.", check=_check, paper=_paper(10.5, 2.2, 74.9, 92.1))
def san10_pairwise(
    *,
    relation: PairwiseRelation = "subtraction",
    footprint: int = 7,
    position_encoding: PositionEncoding = "relative",
    gamma: Gamma = "official",
    share_planes: int = 8,
    padding: Padding = "reflect",
    transforms: Transforms = "separate",
    num_classes: int = 1000,
) -> SAN:
    """SAN10 with pairwise self-attention (SAN Table 2): 2/1/2/4/1 blocks at 112/56/28/14/7 px;
    the official operator by default (subtraction, relative positions, footprint 7)."""
    return _san(10, "pairwise", **locals())


@register_model(label="SAN10-patch.", check=_check, paper=_paper(11.8, 1.9, 77.1, 93.5))
def san10_patchwise(
    *,
    relation: PatchwiseRelation = "concatenation",
    footprint: int = 7,
    position_encoding: PatchwisePosition = "none",
    gamma: Gamma = "official",
    share_planes: int = 8,
    padding: Padding = "reflect",
    transforms: Transforms = "separate",
    num_classes: int = 1000,
) -> SAN:
    """SAN10 with patchwise self-attention (SAN Table 2): 2/1/2/4/1 blocks at 112/56/28/14/7 px;
    the official operator by default (concatenation, footprint 7)."""
    return _san(10, "patchwise", **locals())


@register_model(label="SAN15-pair.", check=_check, paper=_paper(14.1, 3.0, 76.6, 93.1))
def san15_pairwise(
    *,
    relation: PairwiseRelation = "subtraction",
    footprint: int = 7,
    position_encoding: PositionEncoding = "relative",
    gamma: Gamma = "official",
    share_planes: int = 8,
    padding: Padding = "reflect",
    transforms: Transforms = "separate",
    num_classes: int = 1000,
) -> SAN:
    """SAN15 with pairwise self-attention (SAN Table 2): 3/2/3/5/2 blocks at 112/56/28/14/7 px;
    the official operator by default (subtraction, relative positions, footprint 7)."""
    return _san(15, "pairwise", **locals())


@register_model(label="SAN15-patch.", check=_check, paper=_paper(16.2, 2.6, 78.0, 93.9))
def san15_patchwise(
    *,
    relation: PatchwiseRelation = "concatenation",
    footprint: int = 7,
    position_encoding: PatchwisePosition = "none",
    gamma: Gamma = "official",
    share_planes: int = 8,
    padding: Padding = "reflect",
    transforms: Transforms = "separate",
    num_classes: int = 1000,
) -> SAN:
    """SAN15 with patchwise self-attention (SAN Table 2): 3/2/3/5/2 blocks at 112/56/28/14/7 px;
    the official operator by default (concatenation, footprint 7)."""
    return _san(15, "patchwise", **locals())


@register_model(label="SAN19-pair.", check=_check, paper=_paper(17.6, 3.8, 76.9, 93.4))
def san19_pairwise(
    *,
    relation: PairwiseRelation = "subtraction",
    footprint: int = 7,
    position_encoding: PositionEncoding = "relative",
    gamma: Gamma = "official",
    share_planes: int = 8,
    padding: Padding = "reflect",
    transforms: Transforms = "separate",
    num_classes: int = 1000,
) -> SAN:
    """SAN19 with pairwise self-attention (SAN Table 2): 3/3/4/6/3 blocks at 112/56/28/14/7 px;
    the official operator by default (subtraction, relative positions, footprint 7)."""
    return _san(19, "pairwise", **locals())


@register_model(label="SAN19-patch.", check=_check, paper=_paper(20.5, 3.3, 78.2, 93.9))
def san19_patchwise(
    *,
    relation: PatchwiseRelation = "concatenation",
    footprint: int = 7,
    position_encoding: PatchwisePosition = "none",
    gamma: Gamma = "official",
    share_planes: int = 8,
    padding: Padding = "reflect",
    transforms: Transforms = "separate",
    num_classes: int = 1000,
) -> SAN:
    """SAN19 with patchwise self-attention (SAN Table 2): 3/3/4/6/3 blocks at 112/56/28/14/7 px;
    the official operator by default (concatenation, footprint 7)."""
    return _san(19, "patchwise", **locals())
