"""Local self-attention ops against direct transcriptions of the official CUDA kernels."""

from __future__ import annotations

import importlib
import math
import re
import types

import pytest
import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode

from suite.errors import SuiteError
from suite.ops import (
    BACKENDS,
    PADDINGS,
    PAIRWISE_RELATIONS,
    PATCHWISE_RELATIONS,
    Window,
    aggregation,
    pairwise_relation,
    patchwise_relation,
    position_grid,
    use_backend,
)
from suite.ops.conv import conv1x1
from suite.ops.gamma import batch_norm_relu_conv, fold_gamma

# ------------------------------------------------------------------------------------------- cases
# What the op tests are parametrised over, defined once: footprints and map sizes, dtypes, the ops.
# (kernel, dilation, height, width): odd sizes, every kernel size and dilation.
GEOMETRIES = [(3, 1, 5, 7), (3, 2, 9, 6), (5, 1, 5, 7), (5, 2, 9, 6), (7, 1, 9, 6)]
# The pairwise relation tests (five relations a case) take three: the smallest, a dilated 5x5, the 7x7.
RELATION_GEOMETRIES = [GEOMETRIES[0], GEOMETRIES[3], GEOMETRIES[4]]
# One rounding of an exact value v to a format of p significand bits errs by at most u |v|, u = 2^-p.
UNIT_ROUNDOFF = {torch.bfloat16: 2.0**-8, torch.float16: 2.0**-11}
LOW_PRECISION = list(UNIT_ROUNDOFF)  # the dtypes whose sums the ops make in float32
DTYPES = [torch.float64, torch.float32, *LOW_PRECISION]
every_padding = pytest.mark.parametrize("padding", PADDINGS)
every_dtype = pytest.mark.parametrize("dtype", DTYPES, ids=str)
low_precision = pytest.mark.parametrize("dtype", LOW_PRECISION, ids=str)
# Every op, as a function of (a, b, kernel, dilation, padding): b is the aggregation's weights
# (N, Cw, k*k, H*W), else psi; a relation is named as pairwise_relation takes it, or "patchwise NAME".
OPS = {
    "aggregation": aggregation,
    **{relation: (lambda a, b, k, d, p, r=relation: pairwise_relation(a, b, r, k, d, p))
       for relation in PAIRWISE_RELATIONS},
    **{f"patchwise {relation}": (lambda a, b, k, d, p, r=relation: patchwise_relation(a, b, r, k, d, p))
       for relation in PATCHWISE_RELATIONS},
}


# ----------------------------------------------------------------------------- loop references
def _source(t: torch.Tensor, hi: int, wi: int, padding: str) -> torch.Tensor | None:
    """t[:, :, hi, wi] with the kernels' out-of-range rule (reflect: -h and 2(H-1)-h; zeros: None)."""
    height, width = t.shape[-2:]
    if not (0 <= hi < height and 0 <= wi < width):
        if padding == "zeros":
            return None
        hi = -hi if hi < 0 else (2 * (height - 1) - hi if hi >= height else hi)
        wi = -wi if wi < 0 else (2 * (width - 1) - wi if wi >= width else wi)
    return t[:, :, hi, wi]


def _footprint(k: int, d: int, h: int, w: int):
    pad = d * (k - 1) // 2
    for kh in range(k):
        for kw in range(k):
            yield kh * k + kw, h - pad + kh * d, w - pad + kw * d


def ref_aggregation(x, wt, k, d, padding):
    n, c, height, width = x.shape
    channel_of = torch.arange(c) % wt.shape[1]
    pixels = []
    for h in range(height):
        for w in range(width):
            acc = torch.zeros(n, c, dtype=x.dtype)
            for j, hi, wi in _footprint(k, d, h, w):
                v = _source(x, hi, wi, padding)
                if v is not None:
                    acc = acc + wt[:, channel_of, j, h * width + w] * v
            pixels.append(acc)
    return torch.stack(pixels, -1).view(n, c, height, width)


def ref_relation(phi, psi, relation, k, d, padding):
    n, c, height, width = phi.shape
    columns = []
    for h in range(height):
        for w in range(width):
            centre = phi[:, :, h, w]
            per_j = []
            for _, hi, wi in _footprint(k, d, h, w):
                v = _source(psi, hi, wi, padding)
                v = torch.zeros_like(centre) if v is None else v
                per_j.append({
                    "summation": lambda: centre + v,
                    "subtraction": lambda: centre - v,
                    "hadamard": lambda: centre * v,
                    "dot": lambda: (centre * v).sum(1, keepdim=True),
                    "concatenation": lambda: torch.cat([centre, v], 1),
                }[relation]())
            columns.append(torch.stack(per_j, -1))
    return torch.stack(columns, -1)  # (N, width, K, L)


def _grads(out, inputs, seed=0):
    g = torch.randn(out.shape, generator=torch.Generator().manual_seed(seed), dtype=out.dtype)
    return torch.autograd.grad(out, inputs, g)


def _close(a, b, tol=1e-10):
    assert a.shape == b.shape
    assert torch.allclose(a, b, atol=tol, rtol=tol), (a - b).abs().max().item()


# ------------------------------------------------------------------------------------ aggregation
@pytest.fixture(params=["rows", "flat", "channels-last"])
def forward(request, monkeypatch):
    """Each of the aggregation's CPU forward loops, chosen by its thresholds whatever the shapes;
    gives the weights' layout that loop takes (the channels-last one: channels contiguous)."""
    flat_below, channels_last_from = {"rows": (0, 1000), "flat": (1000, 1000), "channels-last": (0, 1)}[request.param]
    module = importlib.import_module("suite.ops.aggregation")
    monkeypatch.setattr(module, "FLAT_BELOW", flat_below)
    monkeypatch.setattr(module, "CHANNELS_LAST_FROM", channels_last_from)
    ran = []
    for loop, name in (("flat", "_aggregate_flat"), ("channels-last", "_aggregate_channels_last")):
        original = getattr(module, name)
        monkeypatch.setattr(module, name, lambda *args, f=original, loop=loop: ran.append(loop) or f(*args))
    fmt = torch.channels_last if request.param == "channels-last" else torch.contiguous_format
    yield types.SimpleNamespace(layout=lambda w: w.contiguous(memory_format=fmt), ran=ran, name=request.param)
    assert set(ran) <= {request.param}, ran  # no other forward ran (x channels-last leaves only rows or channels-last)


@every_padding
@pytest.mark.parametrize("k,d,height,width", GEOMETRIES)
def test_aggregation_matches_kernel_transcription(k, d, height, width, padding, forward):
    torch.manual_seed(0)
    x = torch.randn(2, 8, height, width, dtype=torch.float64, requires_grad=True)
    w = forward.layout(torch.randn(2, 2, k * k, height * width, dtype=torch.float64)).requires_grad_()
    expected = ref_aggregation(x, w, k, d, padding)
    expected_grads = _grads(expected, (x, w))
    for backend in ("shift", "unfold"):
        with use_backend(backend):
            out = aggregation(x, w, k, d, padding)
        _close(out, expected)
        for got, want in zip(_grads(out, (x, w)), expected_grads):
            _close(got, want)
    assert forward.ran or forward.name == "rows"


@every_padding
def test_aggregation_gradcheck(padding):
    torch.manual_seed(0)
    x = torch.randn(1, 4, 4, 3, dtype=torch.float64, requires_grad=True)
    w = torch.randn(1, 2, 9, 12, dtype=torch.float64, requires_grad=True)
    for dilation in (1, 2):
        assert torch.autograd.gradcheck(lambda a, b: aggregation(a, b, 3, dilation, padding), (x, w))


def test_aggregation_channel_sharing_is_interleaved():
    """Value channel c uses weight channel c mod Cw, not c // (C / Cw)."""
    x = torch.ones(1, 4, 3, 3)
    w = torch.zeros(1, 2, 1, 9)
    w[:, 1] = 1.0  # only weight channel 1 is non-zero
    out = aggregation(x, w, 1)
    assert out[0, :, 0, 0].tolist() == [0.0, 1.0, 0.0, 1.0]


def _positive(*shape, seed, dtype):
    """Values in [0.5, 1.5) in `dtype`: sums of their products have no cancellation, so an error
    relative to the sum measures the accumulation alone."""
    return (torch.rand(*shape, generator=torch.Generator().manual_seed(seed)) + 0.5).to(dtype)


def _assert_rounded_once(got, exact):
    """got (half or bfloat16) is within one rounding, u |exact|, of the float64 `exact` everywhere.

    A sum of K positive terms made in float32 and cast once stays within it (float32 adds K * 6e-8
    relative, a thousandth of bfloat16's u at K = 49; the 1% margin covers it); made in the low
    precision, each of the K additions rounds, and the worst element is off by 5 to 7 u.
    """
    u = UNIT_ROUNDOFF[got.dtype]
    worst = ((got.double() - exact).abs() / (u * exact.abs())).max().item()
    assert worst <= 1.01, f"off by {worst:.2f} u: the sum was not made in float32 and rounded once"


@every_padding
@low_precision
def test_aggregation_low_precision_sums_in_float32(dtype, padding, forward):
    """y and dL/dx (K = 49 products per element, and the reflected border folded back) are the
    exact values rounded once, in each forward loop; the 2e-2 closeness this replaces also held
    for sums made in the low precision."""
    x, g = _positive(2, 16, 9, 10, seed=0, dtype=dtype), _positive(2, 16, 9, 10, seed=1, dtype=dtype)
    w = forward.layout(torch.rand(2, 4, 49, 90, generator=torch.Generator().manual_seed(2)).softmax(2).to(dtype))
    exact_x, exact_w = x.double().requires_grad_(), w.double()
    with use_backend("unfold"):
        exact = aggregation(exact_x, exact_w, 7, 1, padding)
    x.requires_grad_()
    out = aggregation(x, w, 7, 1, padding)
    assert out.dtype == dtype
    _assert_rounded_once(out, exact)
    _assert_rounded_once(torch.autograd.grad(out, x, g)[0], torch.autograd.grad(exact, exact_x, g.double())[0])


# Worst relative error of dL/dw allowed, for G = C / Cw = 4 products per element: float64 to the last
# bits; float32 sums G rounded products, within G u of the exact value (u = 2^-24). Half and
# bfloat16, shift backend: the products of float32 copies are exact, their G terms add in float32
# (G 2^-24) and the sum rounds once (u): u + G 2^-24 (measured 0.99 u; with each product rounded in
# the dtype, as before, 1.6 u). The unfold backend's autograd rounds each product in the dtype too: 2 u + G 2^-24.
WEIGHT_GRAD_GROUPS = 4


def _weight_grad_tolerance(backend: str, dtype: torch.dtype) -> float:
    if dtype == torch.float64:
        return 1e-13
    u = UNIT_ROUNDOFF.get(dtype, 0.0)
    return (2 * u if backend == "unfold" else u) + WEIGHT_GRAD_GROUPS * 2.0**-24


@every_dtype
@every_padding
@pytest.mark.parametrize("k,d,height,width", GEOMETRIES)
def test_aggregation_weight_gradient_against_its_formula(k, d, height, width, padding, dtype):
    """dL/dw of both backends against that of the kernel transcription (ref_aggregation, by autograd
    in float64), for every footprint, dilation and padding; positive values, so the error relative
    to the exact sum measures the arithmetic alone."""
    channels = 2 * WEIGHT_GRAD_GROUPS
    x = _positive(2, channels, height, width, seed=0, dtype=dtype)
    g = _positive(2, channels, height, width, seed=1, dtype=dtype)
    w = _positive(2, 2, k * k, height * width, seed=2, dtype=dtype).requires_grad_()
    exact_w = w.detach().double().requires_grad_()
    (exact,) = torch.autograd.grad(ref_aggregation(x.double(), exact_w, k, d, padding), exact_w, g.double())
    for backend in BACKENDS:
        with use_backend(backend):
            (got,) = torch.autograd.grad(aggregation(x, w, k, d, padding), w, g)
        assert got.dtype == dtype and got.shape == exact.shape
        worst = ((got.double() - exact).abs() / exact.abs().clamp_min(1e-300)).max().item()
        assert worst <= _weight_grad_tolerance(backend, dtype), (backend, worst)


@pytest.mark.parametrize("backend", BACKENDS)
def test_aggregation_casts_weights_to_input_dtype(backend):
    x, w = torch.randn(1, 4, 5, 5, dtype=torch.bfloat16), torch.randn(1, 2, 9, 25)
    with use_backend(backend):
        assert aggregation(x, w, 3).dtype == torch.bfloat16


@pytest.mark.parametrize("w_shape", [(2, 2, 9, 12), (1, 2, 25, 12), (1, 2, 9, 10), (1, 3, 9, 12)],
                         ids=["batch", "footprint", "pixels", "channels"])
def test_aggregation_refuses_weights_that_do_not_fit(w_shape):
    """Weights for another footprint would otherwise be read in part (the first K positions), and
    a weight width that does not divide the values' fails deep inside with a reshape error."""
    with pytest.raises(ValueError, match=r"does not fit x \(1, 4, 3, 4\) with a 3x3 footprint"):
        aggregation(torch.randn(1, 4, 3, 4), torch.randn(*w_shape), 3)


@pytest.mark.parametrize("requires_grad", [False, True])
def test_aggregation_channels_last(requires_grad, forward):
    torch.manual_seed(0)
    x = torch.randn(2, 16, 9, 6)
    w = torch.randn(2, 4, 25, 54)
    with use_backend("unfold"):
        expected = aggregation(x, w, 5)
    x_cl = x.to(memory_format=torch.channels_last).requires_grad_(requires_grad)
    w_cl = w.to(memory_format=torch.channels_last).requires_grad_(requires_grad)
    out = aggregation(x_cl, w_cl, 5)
    assert out.is_contiguous(memory_format=torch.channels_last)
    _close(out, expected, 1e-5)
    if requires_grad:
        x.requires_grad_(), w.requires_grad_()
        with use_backend("unfold"):
            want = _grads(aggregation(x, w, 5), (x, w))
        for got, want in zip(_grads(out, (x_cl, w_cl)), want):
            _close(got, want, 1e-5)


# Largest error relative to the exact value of the rounded inputs (positive data): float64 and
# float32 with room for a K = 49 term running sum; half and bfloat16 one rounded product and one
# rounded sum, 2 u (see relations.py and _weight_grad_tolerance).
LAYOUT_TOLERANCE = {torch.float64: 1e-13, torch.float32: 49 * 2.0**-24,
                    **{dtype: 2.02 * u for dtype, u in UNIT_ROUNDOFF.items()}}


def _laid_out(t: torch.Tensor, layout: str) -> torch.Tensor:
    """t's values in another memory layout: NHWC, a view of the last two dims transposed, or every
    other element (channels and columns) of a larger tensor."""
    if layout == "channels_last":
        return t.contiguous(memory_format=torch.channels_last)
    if layout == "transposed":
        return t.transpose(-1, -2).contiguous().transpose(-1, -2)
    big = t.new_zeros(t.shape[0], 2 * t.shape[1], *t.shape[2:-1], 2 * t.shape[-1])
    big[:, ::2, ..., ::2] = t
    return big[:, ::2, ..., ::2]


# op -> (the op in OPS, weight channels: the aggregation with 2 and 32, the relations none)
LAYOUT_OPS = {
    **{f"aggregation Cw={cw}": ("aggregation", cw) for cw in (2, 32)},
    **{op: (op, 0) for op in OPS if op != "aggregation"},
}


@every_dtype
@pytest.mark.parametrize("op", list(LAYOUT_OPS))
def test_every_op_takes_any_layout(op, dtype):
    """Forward and both gradients, on NHWC, transposed-view and strided-slice inputs (both of them,
    and the aggregation's weights likewise; with 32 weight channels NHWC weights take its
    channels-last forward), with a dilated 5x5 footprint on an odd 9x11 map and both paddings,
    against the float64 unfold reference."""
    name, weight_channels = LAYOUT_OPS[op]
    fn = lambda a, b, p: OPS[name](a, b, 5, 2, p)  # noqa: E731
    channels = 64 if weight_channels == 32 else 8
    a = _positive(2, channels, 9, 11, seed=0, dtype=dtype)
    b = (_positive(2, weight_channels, 25, 99, seed=1, dtype=dtype) if weight_channels
         else _positive(2, channels, 9, 11, seed=1, dtype=dtype))
    for padding in PADDINGS:
        exact_a, exact_b = (t.double().requires_grad_() for t in (a, b))
        with use_backend("unfold"):
            exact = fn(exact_a, exact_b, padding)
        g = _positive(*exact.shape, seed=2, dtype=dtype)
        wanted = (exact.detach(), *torch.autograd.grad(exact, (exact_a, exact_b), g.double()))
        for layout in ("channels_last", "transposed", "strided"):
            inputs = [_laid_out(t, layout).requires_grad_() for t in (a, b)]
            out = fn(*inputs, padding)
            for got, want in zip((out, *torch.autograd.grad(out, inputs, g)), wanted):
                assert got.dtype == dtype and got.shape == want.shape
                worst = ((got.double() - want).abs() - LAYOUT_TOLERANCE[dtype] * want.abs()).max().item()
                assert worst <= 0, (padding, layout, worst)


class _LargestTensor(TorchDispatchMode):
    """Records the largest tensor any aten op returns (of `dtype`, if given)."""

    def __init__(self, dtype: torch.dtype | None = None) -> None:
        super().__init__()
        self.largest, self.dtype = 0, dtype

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else [out]:
            if isinstance(t, torch.Tensor) and self.dtype in (None, t.dtype):
                self.largest = max(self.largest, t.numel())
        return out


def _aggregation_memory(backend: str) -> tuple[int, int]:
    """(numel autograd saved, largest tensor created in forward + backward) of one aggregation."""
    n, c, cw, k, h, w = 2, 32, 2, 7, 12, 12
    x = torch.randn(n, c, h, w, requires_grad=True)
    wt = torch.randn(n, cw, k * k, h * w, requires_grad=True)
    saved = 0

    def pack(t: torch.Tensor) -> torch.Tensor:
        nonlocal saved
        saved += t.numel()
        return t

    with _LargestTensor() as mode, use_backend(backend):
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            out = aggregation(x, wt, k)
        out.sum().backward()
    return saved, mode.largest


def test_aggregation_never_materialises_the_expanded_values():
    n, c, cw, k2, l = 2, 32, 2, 49, 144
    expanded, budget = n * c * k2 * l, n * c * l + n * cw * k2 * l  # (x, w), as the CUDA kernel
    saved, largest = _aggregation_memory("shift")
    assert saved <= budget
    assert largest < expanded / 8
    # The check can fail: the naive unfold keeps and creates the expanded tensor.
    naive_saved, naive_largest = _aggregation_memory("unfold")
    assert naive_saved >= expanded and naive_largest >= expanded


# --------------------------------------------------------------------------------------- relations
@pytest.mark.parametrize("relation", PAIRWISE_RELATIONS)
@every_padding
@pytest.mark.parametrize("k,d,height,width", RELATION_GEOMETRIES)
def test_pairwise_relation_matches_reference(relation, padding, k, d, height, width):
    torch.manual_seed(0)
    phi = torch.randn(2, 3, height, width, dtype=torch.float64, requires_grad=True)
    psi = torch.randn(2, 3, height, width, dtype=torch.float64, requires_grad=True)
    expected = ref_relation(phi, psi, relation, k, d, padding)
    expected_grads = _grads(expected, (phi, psi))
    for backend in ("shift", "unfold"):
        with use_backend(backend):
            out = pairwise_relation(phi, psi, relation, k, d, padding)
        _close(out, expected)
        for got, want in zip(_grads(out, (phi, psi)), expected_grads):
            _close(got, want)


@pytest.mark.parametrize("relation", PAIRWISE_RELATIONS)
@every_padding
def test_pairwise_relation_gradcheck(relation, padding):
    torch.manual_seed(0)
    phi = torch.randn(1, 2, 5, 4, dtype=torch.float64, requires_grad=True)
    psi = torch.randn(1, 2, 5, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: pairwise_relation(a, b, relation, 3, 1, padding), (phi, psi))


@every_padding
@low_precision
@pytest.mark.parametrize("relation", [*PAIRWISE_RELATIONS, "patchwise concatenation"])
def test_relation_low_precision_gradients_sum_in_float32(relation, dtype, padding):
    """dL/dphi and dL/dpsi sum K = 49 terms per element (and psi's reflected border folds back):
    each is the exact value rounded once."""
    phi, psi = (_positive(2, 8, 9, 10, seed=seed, dtype=dtype).requires_grad_() for seed in (0, 1))
    exact_phi, exact_psi = (t.detach().double().requires_grad_() for t in (phi, psi))
    op = lambda a, b: OPS[relation](a, b, 7, 1, padding)  # noqa: E731
    with use_backend("unfold"):
        exact = op(exact_phi, exact_psi)
    out = op(phi, psi)
    g = _positive(*out.shape, seed=2, dtype=dtype)
    wanted = torch.autograd.grad(exact, (exact_phi, exact_psi), g.double())
    for got, want in zip(torch.autograd.grad(out, (phi, psi), g), wanted):
        _assert_rounded_once(got, want)


@low_precision
def test_position_gradient_low_precision_sums_in_float32(dtype):
    """The position term is shared by the batch: its gradient sums the N = 16 images' gradients,
    the exact value rounded once (a sum made in the low precision rounds at each image)."""
    phi, psi = (_positive(16, 2, 5, 6, seed=seed, dtype=dtype) for seed in (0, 1))
    position = _positive(1, 2, 9, 30, seed=2, dtype=dtype).requires_grad_()
    out = pairwise_relation(phi, psi, "subtraction", 3, position=position)
    g = _positive(*out.shape, seed=3, dtype=dtype)
    (got,) = torch.autograd.grad(out, position, g)
    _assert_rounded_once(got, g[:, 2:].double().sum(0, keepdim=True))


@every_padding
@low_precision
@pytest.mark.parametrize("op", ["aggregation", "subtraction", "dot", "concatenation", "patchwise clique"])
def test_low_precision_gradients_through_unfold_fold_in_float32(op, dtype, padding):
    """Gradients that autograd takes back through Window.unfold (the unfold backend's ops, and the
    clique product on either backend): each product's gradient rounds once to the dtype, then col2im
    adds the K = 49 overlapping windows (and the reflected border folds back) in float32 and rounds
    once, so every element is within 2 u of the exact value; with those additions in the low
    precision the worst element was 4 to 7 u off."""
    a, b = (_positive(2, 8, 9, 10, seed=seed, dtype=dtype).requires_grad_() for seed in (0, 1))
    if op == "aggregation":  # dL/dx only: w is not unfolded
        b = _positive(2, 2, 49, 90, seed=1, dtype=dtype).requires_grad_()
    fn = lambda x, y: OPS[op](x, y, 7, 1, padding)  # noqa: E731
    exact_a, exact_b = (t.detach().double().requires_grad_() for t in (a, b))
    with use_backend("unfold"):
        exact, out = fn(exact_a, exact_b), fn(a, b)
    inputs, exact_inputs = ((a,), (exact_a,)) if op == "aggregation" else ((a, b), (exact_a, exact_b))
    g = _positive(*out.shape, seed=2, dtype=dtype)
    u = UNIT_ROUNDOFF[dtype]
    for got, want in zip(torch.autograd.grad(out, inputs, g), torch.autograd.grad(exact, exact_inputs, g.double())):
        worst = ((got.double() - want).abs() / (u * want.abs())).max().item()
        assert worst <= 2.0, f"off by {worst:.2f} u: col2im's sums were not made in float32"


@low_precision
def test_unfold_of_a_low_precision_input_makes_no_float32_copy_of_the_k_wide_tensor(dtype):
    """Window.unfold sums its gradient in float32 (the values: the test above) one footprint row at a
    time: no float32 tensor as large as the unfolded one is made in forward or backward (an unfold
    made in float32 made one, twice the unfolded x's size: the forward's peak, measured in commit
    3bc4fed). The forward is F.unfold's copy bit for bit, and
    autograd keeps only the dtype's unfolded x and w (it kept a float32 copy of x too)."""
    n, c, k, h, w = 2, 8, 7, 12, 12
    expanded = n * c * k * k * h * w
    x = _positive(n, c, h, w, seed=0, dtype=dtype).requires_grad_()
    weights = _positive(n, 2, k * k, h * w, seed=1, dtype=dtype).requires_grad_()
    saved = []
    with _LargestTensor(torch.float32) as mode, use_backend("unfold"):
        with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append((t.dtype, t.numel())) or t, lambda t: t):
            out = aggregation(x, weights, k)
        out.backward(_positive(*out.shape, seed=2, dtype=dtype))
    assert 0 < mode.largest < expanded / 4  # one footprint row of the K windows, widened (1/7)
    assert {dtype for dtype, _ in saved} == {dtype} and sum(size for _, size in saved) == expanded + weights.numel()
    window = Window(k)
    plain = F.unfold(window.pad_input(x.detach()), k).view(n, c, k * k, h * w)
    assert torch.equal(window.unfold(x), plain) and torch.equal(window.unfold(x.detach()), plain)


# Worst error of the channel sums (dot, star, clique), in units u of the dtype, over 256 (float32)
# or 64 (half, bfloat16) positive products. Half and bfloat16, dot and star: each product rounds,
# the sum runs in float32 and rounds once, within 2 u (the bound relations.py documents; one running
# sum in the low precision drifts to 7 u); clique: its matrix products multiply and add in float32,
# rounding once, 1 u. Float32: torch sums in blocks, so the error grows with log C and stays near
# 3 u (one running float32 sum over the 256 channels drifts to 12 u); clique's BLAS products add in
# their own order, bounded only by a running sum's C u (16 u measured).
CHANNEL_SUM_ROUNDING = {
    torch.float32: (256, {"dot": 6.0, "star": 6.0, "clique": 256.0}),
    torch.bfloat16: (64, {"dot": 2.02, "star": 2.02, "clique": 1.01}),
    torch.float16: (64, {"dot": 2.02, "star": 2.02, "clique": 1.01}),
}


@pytest.mark.parametrize("relation", ["dot", "star", "clique"])
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", list(CHANNEL_SUM_ROUNDING), ids=str)
def test_channel_sum_rounding(dtype, backend, relation):
    """phi^T psi (pairwise dot, patchwise star and clique) against its float64 value: summed over
    the channels, not the footprint, in float32 for half and bfloat16."""
    channels, tolerances = CHANNEL_SUM_ROUNDING[dtype]
    u = UNIT_ROUNDOFF.get(dtype, 2.0**-24)
    phi, psi = (_positive(2, channels, 7, 8, seed=seed, dtype=dtype) for seed in (0, 1))
    if relation == "dot":
        op = lambda a, b: pairwise_relation(a, b, "dot", 3, 1, "reflect")  # noqa: E731
    else:
        op = lambda a, b: patchwise_relation(a, b, relation, 3, 1, "reflect")  # noqa: E731
    exact = op(phi.double(), psi.double())
    if relation != "clique":  # the kernel transcription (clique's is checked in float64 below)
        _close(exact.view(2, 1, 9, 56), ref_relation(phi.double(), psi.double(), "dot", 3, 1, "reflect"))
    with use_backend(backend):
        got = op(phi, psi)
    assert got.dtype == dtype and got.shape == exact.shape
    worst = ((got.double() - exact).abs() / (u * exact.abs())).max().item()
    assert worst <= tolerances[relation], f"off by {worst:.2f} u"


@pytest.mark.parametrize("relation", ["subtraction", "concatenation", "dot"])
def test_pairwise_relation_appends_the_position_term(relation):
    """[delta, position term] written in place equals the concatenation, with gradients for all three."""
    torch.manual_seed(0)
    phi, psi = (torch.randn(2, 3, 5, 4, dtype=torch.float64, requires_grad=True) for _ in range(2))
    position = torch.randn(1, 2, 9, 20, dtype=torch.float64, requires_grad=True)
    fn = lambda a, b, p: pairwise_relation(a, b, relation, 3, position=p)  # noqa: E731
    delta = pairwise_relation(phi, psi, relation, 3)
    assert torch.equal(fn(phi, psi, position), torch.cat([delta, position.expand(2, -1, -1, -1)], 1))
    with use_backend("unfold"):
        assert torch.equal(fn(phi, psi, position), torch.cat([delta, position.expand(2, -1, -1, -1)], 1))
    assert torch.autograd.gradcheck(fn, (phi, psi, position))
    per_image = torch.randn(2, 2, 9, 20, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(fn, (phi, psi, per_image))


def test_relative_position_reflects_at_the_border():
    """p_i - p_j of an outside neighbour is that of the mirrored inside one (official `Subtraction`)."""
    p = position_grid(4, 5)
    assert p.shape == (1, 2, 4, 5)
    assert torch.equal(p[0, 0, 0], torch.linspace(-1, 1, 5)) and torch.equal(p[0, 1, :, 0], torch.linspace(-1, 1, 4))
    rel = pairwise_relation(p, p, "subtraction", 3).view(1, 2, 3, 3, 4, 5)
    # pixel (0, 0): neighbour (-1, -1) reads (1, 1), so its x-difference equals that of (+1, +1).
    assert torch.equal(rel[0, :, 0, 0, 0, 0], rel[0, :, 2, 2, 0, 0])
    assert torch.allclose(rel[0, 0, 1, 2, 1, 1], torch.tensor(-0.5))  # x_i - x_{i+1} = -2/4


def test_patchwise_concatenation_is_the_official_unfold_layout():
    torch.manual_seed(0)
    phi, psi = torch.randn(2, 3, 6, 5), torch.randn(2, 3, 6, 5)
    out = patchwise_relation(phi, psi, "concatenation", 3)
    official = torch.cat([phi.view(2, 3, 1, 30), F.unfold(F.pad(psi, (1, 1, 1, 1), mode="reflect"), 3).view(2, 27, 1, 30)], 1)
    assert torch.equal(out, official.view(2, 30, 6, 5))


@pytest.mark.parametrize("padding,dilation", [("reflect", 1), ("zeros", 2)])
def test_patchwise_concatenation_matches_unfold_and_gradcheck(padding, dilation):
    torch.manual_seed(0)
    phi = torch.randn(2, 2, 7, 6, dtype=torch.float64, requires_grad=True)
    psi = torch.randn(2, 2, 7, 6, dtype=torch.float64, requires_grad=True)
    fn = lambda a, b: patchwise_relation(a, b, "concatenation", 3, dilation, padding)  # noqa: E731
    with use_backend("unfold"):
        reference = fn(phi, psi)
    assert torch.equal(fn(phi, psi), reference)
    cl = fn(phi.contiguous(memory_format=torch.channels_last), psi.contiguous(memory_format=torch.channels_last))
    assert torch.equal(cl, reference)
    assert torch.autograd.gradcheck(fn, (phi, psi))
    assert torch.autograd.gradcheck(fn, (phi.detach().contiguous(memory_format=torch.channels_last).requires_grad_(),
                                         psi.detach().contiguous(memory_format=torch.channels_last).requires_grad_()))


def test_patchwise_star_and_clique_products():
    torch.manual_seed(0)
    phi, psi = torch.randn(1, 3, 5, 4, dtype=torch.float64), torch.randn(1, 3, 5, 4, dtype=torch.float64)
    star = patchwise_relation(phi, psi, "star", 3)
    assert star.shape == (1, 9, 5, 4)
    _close(star.flatten(2), ref_relation(phi, psi, "dot", 3, 1, "reflect")[:, 0])
    clique = patchwise_relation(phi, psi, "clique", 3, padding="zeros").view(1, 9, 9, 5, 4)
    for (h, w) in [(0, 0), (2, 1), (4, 3)]:
        phis = torch.stack([_source(phi, hi, wi, "zeros") if _source(phi, hi, wi, "zeros") is not None
                            else torch.zeros(1, 3, dtype=phi.dtype) for _, hi, wi in _footprint(3, 1, h, w)], 1)
        psis = torch.stack([_source(psi, hi, wi, "zeros") if _source(psi, hi, wi, "zeros") is not None
                            else torch.zeros(1, 3, dtype=psi.dtype) for _, hi, wi in _footprint(3, 1, h, w)], 1)
        _close(clique[0, :, :, h, w], phis[0] @ psis[0].T)  # [phi_j^T psi_k]_{j,k}


# ------------------------------------------------------------------------------------ window, errors
@pytest.mark.parametrize("relation", PATCHWISE_RELATIONS)
def test_patchwise_relations_name_mismatched_shapes(relation):
    with pytest.raises(ValueError, match=r"phi \(1, 3, 5, 4\) and psi \(1, 2, 5, 4\)"):
        patchwise_relation(torch.randn(1, 3, 5, 4), torch.randn(1, 2, 5, 4), relation, 3)


def test_pairwise_relations_refuse_unknown_names_and_mismatched_shapes():
    x = torch.randn(1, 2, 5, 4)
    with pytest.raises(ValueError, match="unknown pairwise relation 'softmax'"):
        pairwise_relation(x, x, "softmax", 3)
    with pytest.raises(ValueError, match=r"phi \(1, 3, 5, 4\) and psi \(1, 2, 5, 4\)"):
        pairwise_relation(torch.randn(1, 3, 5, 4), x, "subtraction", 3)


def test_gamma_ops_refuse_layers_they_cannot_compute():
    """Only 1x1 ungrouped convs fold, and a BN folds only into the conv right before it; the models'
    layout check keeps anything else off these paths, so a direct caller is told here."""
    nn = torch.nn
    for layers in ([nn.Conv2d(4, 4, 1, groups=2)], [nn.Conv2d(4, 4, 3)],
                   [nn.Conv2d(4, 4, 1), nn.ReLU(), nn.BatchNorm2d(4)], [nn.Dropout()]):
        with pytest.raises(TypeError):
            fold_gamma(nn.Sequential(*layers).eval())
    with pytest.raises(TypeError, match="1x1"):
        batch_norm_relu_conv(nn.Identity(), [(nn.BatchNorm2d(4), torch.randn(4, 4, 3, 3), None)], torch.randn(2, 4, 5, 5))


def _transcription(op: str):
    """The op's kernel transcription as a function of (a, b, k, d, padding), or None."""
    if op == "aggregation":
        return ref_aggregation
    if op in PAIRWISE_RELATIONS:
        return lambda a, b, k, d, p: ref_relation(a, b, op, k, d, p)
    if op == "patchwise star":
        return lambda a, b, k, d, p: ref_relation(a, b, "dot", k, d, p).view(a.shape[0], k * k, *a.shape[2:])
    return None


@pytest.mark.parametrize("op", list(OPS))
def test_a_dilated_footprint_wider_than_the_map(op):
    """Footprint 7 at dilation 2 spans 13 px and pads 6: reflection needs maps larger than 6 px, and
    on a 5x3 or 3x7 map every op, on either backend, stops with the SuiteError naming `padding` (as
    the README says); zero padding takes them, and on 5x3 (all of some pixels' neighbours outside)
    and with reflection on 7x9 each op matches its kernel transcription (clique and concatenation:
    the unfold backend), forward and back."""
    fn, transcription = OPS[op], _transcription(op)
    k, d = 7, 2

    def inputs(height: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
        torch.manual_seed(0)
        a = torch.randn(2, 4, height, width, dtype=torch.float64, requires_grad=True)
        shape = (2, 2, k * k, height * width) if op == "aggregation" else (2, 4, height, width)
        return a, torch.randn(*shape, dtype=torch.float64, requires_grad=True)

    for backend in BACKENDS:
        for height, width in [(5, 3), (3, 7)]:
            with pytest.raises(SuiteError, match=r"reflection padding of 6 px needs feature maps larger than 6 px, "
                                                 rf"got {height}x{width} \(footprint 7, dilation 2\)") as err:
                with use_backend(backend):
                    fn(*inputs(height, width), k, d, "reflect")
            assert err.value.key == "padding" and "padding='zeros'" in str(err.value)
    for height, width, padding in [(5, 3, "zeros"), (7, 9, "reflect")]:
        a, b = inputs(height, width)
        if transcription is None:
            with use_backend("unfold"):
                expected = fn(a, b, k, d, padding)
        else:
            expected = transcription(a, b, k, d, padding)
        expected_grads = _grads(expected, (a, b))
        for backend in BACKENDS:
            with use_backend(backend):
                out = fn(a, b, k, d, padding)
            _close(out, expected)
            for got, want in zip(_grads(out, (a, b)), expected_grads):
                _close(got, want)


def test_window_validation():
    with pytest.raises(SuiteError, match="odd"):
        Window(4)
    for options, key in (({"dilation": 0}, "dilation"), ({"padding": "circular"}, "padding")):
        with pytest.raises(SuiteError) as err:
            Window(3, **options)
        assert err.value.key == key
    with pytest.raises(SuiteError) as err:
        aggregation(torch.randn(1, 4, 3, 3), torch.randn(1, 2, 49, 9), 7)
    assert err.value.key == "padding" and "padding='zeros'" in str(err.value)
    assert aggregation(torch.randn(1, 4, 3, 3), torch.randn(1, 2, 49, 9), 7, padding="zeros").shape == (1, 4, 3, 3)
    with pytest.raises(SuiteError, match="ops backend"):
        with use_backend("cuda-kernels"):
            pass


# ------------------------------------------------------------------------------------------- flops
class _Ops(torch.nn.Module):
    def __init__(self, relation: str) -> None:
        super().__init__()
        self.relation = relation

    def forward(self, x, w):
        return aggregation(x, w, 5), pairwise_relation(x[:, :3], x[:, 3:6], self.relation, 3)


@pytest.mark.parametrize("relation,per_element", [("subtraction", 1), ("hadamard", 1), ("dot", 3), ("concatenation", 0)])
def test_flop_handles_count_as_documented(relation, per_element):
    from fvcore.nn import FlopCountAnalysis

    from suite.ops.flops import FLOP_HANDLES

    x, w = torch.randn(2, 8, 7, 6), torch.randn(2, 4, 25, 42)
    analysis = FlopCountAnalysis(_Ops(relation), (x, w)).set_op_handle(**FLOP_HANDLES)
    analysis.unsupported_ops_warnings(False)
    by_op = analysis.by_operator()
    assert by_op["PythonOp.Aggregation"] == 2 * 8 * 42 * 25
    width = {"dot": 1, "concatenation": 6}.get(relation, 3)
    assert by_op.get("PythonOp.LocalRelation", 0) == 2 * width * 9 * 42 * per_element
    assert set(analysis.unsupported_ops()) <= {"aten::pad"}  # data movement: suite.measure charges it 0


@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")  # shape checks, constant in a trace
def test_a_trace_records_each_op_whole_and_nothing_it_runs_inside(monkeypatch):
    """fvcore counts the Functions from one node each (suite.ops.tracing): their forward runs with
    the tracer off, so none of its K slices and products is recorded, and the trace still computes
    the same thing."""
    from torch.jit._trace import _get_trace_graph

    tracing_inside = []
    offsets = Window.offsets
    monkeypatch.setattr(Window, "offsets", lambda self: tracing_inside.append(torch.jit.is_tracing()) or offsets(self))
    x, w = torch.randn(2, 8, 7, 6), torch.randn(2, 4, 25, 42)
    graph, traced = _get_trace_graph(_Ops("subtraction"), (x, w))
    assert tracing_inside and not any(tracing_inside)
    assert [node.kind() for node in graph.nodes()].count("prim::PythonOp") == 2
    for got, expected in zip(traced, _Ops("subtraction")(x, w)):
        torch.testing.assert_close(got, expected, rtol=0, atol=0)


def test_relation_into_a_footprint_major_chunk():
    """A chunk of footprint positions (the inference path's unit of work) written into a
    (positions, N, width, H, W) buffer is a slice of the whole relation."""
    from suite.ops.relations import relation_into

    torch.manual_seed(0)
    phi, psi = torch.randn(2, 3, 7, 6), torch.randn(2, 3, 7, 6)
    window = Window(5, padding="zeros")
    whole = pairwise_relation(phi, psi, "hadamard", 5, padding="zeros")
    chunk = torch.empty(7, 2, 3, 7, 6)
    relation_into(chunk.permute(1, 2, 0, 3, 4), phi, window.pad_input(psi), "hadamard", window.offsets()[4:11])
    _close(chunk.permute(1, 2, 0, 3, 4).flatten(-2), whole[:, :, 4:11], 0)


# ------------------------------------------------------------------------------- gamma in training
def _two_layer_gamma() -> torch.nn.Sequential:
    torch.manual_seed(0)
    gamma = torch.nn.Sequential(
        torch.nn.BatchNorm2d(5), torch.nn.ReLU(), torch.nn.Conv2d(5, 4, 1, bias=False),
        torch.nn.BatchNorm2d(4), torch.nn.ReLU(), torch.nn.Conv2d(4, 3, 1),
    ).double()
    for bn in (gamma[0], gamma[3]):
        bn.weight.data.uniform_(0.5, 1.5)
        bn.bias.data.uniform_(-0.5, 0.5)
    return gamma


# below and above conv1x1's MIN_PIXELS (64), narrow and at WIDE_CHANNELS (64): every way it computes
@pytest.mark.parametrize("size", [(7, 9), (9, 10)])
@pytest.mark.parametrize("widths", [(5, 4), (64, 72)])
@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("bias", [False, True])
def test_conv1x1_adds_bias_and_residual_like_conv2d(channels_last, bias, size, widths):
    c_in, c_out = widths
    x, residual = torch.randn(3, c_in, *size), torch.randn(3, c_out, *size)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    weight, b = torch.randn(c_out, c_in, 1, 1), torch.randn(c_out) if bias else None
    expected = F.conv2d(x, weight, b)
    torch.testing.assert_close(conv1x1(x, weight, b), expected)
    target = residual.clone()
    assert conv1x1(x, weight, b, add_to=target) is target  # added in place
    torch.testing.assert_close(target, expected + residual)
    # with an eval-mode BN-ReLU in front, made image by image on the CPU path
    scale, shift = torch.rand(c_in) + 0.5, torch.randn(c_in)
    normalised = F.relu(x * scale[:, None, None] + shift[:, None, None])
    expected = F.conv2d(normalised, weight, b)
    torch.testing.assert_close(conv1x1(x, weight, b, affine_relu=(scale, shift)), expected)
    assert not torch.equal(x, normalised)  # x itself is left alone
    target = residual.double()  # a target the per-image products cannot write: the whole-batch way
    conv1x1(x, weight, b, add_to=target, affine_relu=(scale, shift))
    torch.testing.assert_close(target.float(), expected + residual)


# the same four ways backwards: the rectified input remade image by image, or whole (channels-last)
@pytest.mark.parametrize("size", [(7, 9), (9, 10)])
@pytest.mark.parametrize("widths", [(5, 4), (64, 72)])
@pytest.mark.parametrize("channels_last", [False, True])
def test_conv1x1_relu_backward_matches_autograd(channels_last, size, widths):
    from suite.ops.conv import conv1x1_relu_backward

    c_in, c_out = widths
    x = torch.randn(3, c_in, *size, dtype=torch.float64)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    weight = torch.randn(c_out, c_in, 1, 1, dtype=torch.float64, requires_grad=True)
    scale, shift = torch.rand(c_in, dtype=torch.float64) + 0.5, torch.randn(c_in, dtype=torch.float64)
    z = (x * scale[:, None, None] + shift[:, None, None]).requires_grad_()
    grad = torch.randn(3, c_out, *size, dtype=torch.float64)
    expected = torch.autograd.grad(F.conv2d(F.relu(z), weight), (z, weight), grad)
    original = x.clone()
    for got, want in zip(conv1x1_relu_backward(grad, x, weight.detach(), scale, shift), expected):
        _close(got, want)
    assert torch.equal(x, original)


def _layers(gamma: torch.nn.Sequential) -> list:
    return [(gamma[0], gamma[2].weight, gamma[2].bias), (gamma[3], gamma[5].weight, gamma[5].bias)]


# below and above 64 pixels an image: with the 1x1 products image by image, backward remakes the
# last layer's rectified input image by image
@pytest.mark.parametrize("size", [(4, 7), (8, 9)])
@pytest.mark.parametrize("make", ["identity", "subtraction"])
def test_batch_norm_relu_conv_chain_matches_the_modules(make, size):
    """One op for BN-ReLU-conv-BN-ReLU-conv: same output, gradients and running statistics."""
    import copy

    from suite.ops.gamma import batch_norm_relu_conv

    gamma = _two_layer_gamma()
    reference = copy.deepcopy(gamma)
    a = torch.randn(3, 5, *size, dtype=torch.float64, requires_grad=True)
    b = torch.randn(3, 5, *size, dtype=torch.float64, requires_grad=True)
    inputs, fn = ((a,), torch.nn.Identity()) if make == "identity" else ((a, b), torch.sub)
    out = batch_norm_relu_conv(fn, _layers(gamma), *inputs)
    expected = reference(fn(*inputs))
    _close(out, expected)
    params = [p for m in (gamma[0], gamma[2], gamma[3], gamma[5]) for p in m.parameters()]
    ref_params = [p for m in (reference[0], reference[2], reference[3], reference[5]) for p in m.parameters()]
    for got, want in zip(_grads(out, (*inputs, *params)), _grads(expected, (*inputs, *ref_params))):
        _close(got, want)
    for key, value in reference.state_dict().items():
        assert torch.equal(gamma.state_dict()[key], value), key


@pytest.mark.parametrize("channels_last", [False, True])
def test_batch_norm_relu_conv_gradcheck(channels_last):
    from suite.ops.gamma import batch_norm_relu_conv

    gamma = _two_layer_gamma()
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    x = torch.randn(2, 5, 3, 5, dtype=torch.float64).to(memory_format=fmt).requires_grad_()
    w1, w2 = gamma[2].weight, gamma[5].weight

    def fn(x, w1, w2):
        return batch_norm_relu_conv(torch.nn.Identity(), [(gamma[0], w1, None), (gamma[3], w2, gamma[5].bias)], x)

    assert torch.autograd.gradcheck(fn, (x, w1, w2))


def test_batch_norm_relu_conv_keeps_a_narrow_hidden_layer():
    """A hidden layer much narrower than the relation (patchwise gamma's) is kept, not recomputed:
    gradients still match the modules, on maps small enough for gradcheck and on maps where the
    first layer's rectified input is remade image by image."""
    import copy

    from suite.ops.gamma import KEEP_RATIO, batch_norm_relu_conv

    torch.manual_seed(0)
    wide, narrow = 2 * KEEP_RATIO, 2
    gamma = torch.nn.Sequential(
        torch.nn.BatchNorm2d(wide), torch.nn.ReLU(), torch.nn.Conv2d(wide, narrow, 1, bias=False),
        torch.nn.BatchNorm2d(narrow), torch.nn.ReLU(), torch.nn.Conv2d(narrow, 6, 1),
    ).double()
    for size in [(3, 4), (8, 9)]:
        reference = copy.deepcopy(gamma)
        x = torch.randn(2, wide, *size, dtype=torch.float64, requires_grad=True)
        original = x.detach().clone()
        saved = []
        with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t.shape) or t, lambda t: t):
            out = batch_norm_relu_conv(torch.nn.Identity(), _layers(gamma), x)
        assert (2, narrow, *size) in saved
        assert torch.equal(x, original)  # the op normalises in place only what it made itself
        expected = reference(x)
        _close(out, expected)
        params = [p for m in (gamma[0], gamma[2], gamma[3], gamma[5]) for p in m.parameters()]
        ref_params = [p for m in (reference[0], reference[2], reference[3], reference[5]) for p in m.parameters()]
        for got, want in zip(_grads(out, (x, *params)), _grads(expected, (x, *ref_params))):
            _close(got, want)

    def fn(x, w1, w2):
        return batch_norm_relu_conv(torch.nn.Identity(), [(gamma[0], w1, None), (gamma[3], w2, gamma[5].bias)], x)

    x = torch.randn(2, wide, 3, 4, dtype=torch.float64, requires_grad=True)  # small enough for gradcheck
    assert torch.autograd.gradcheck(fn, (x, gamma[2].weight, gamma[5].weight))


@every_dtype
@pytest.mark.parametrize("spread", ["narrow", "wide_later_chunk", "underflow", "nan"])
def test_softmax_base2_matches_softmax_as_chunks_arrive(dtype, spread):
    """Narrow logits are exponentiated chunk by chunk without the shift; a chunk beyond the dtype's
    bound makes every chunk again and takes the shift, whether above it (the third chunk of four:
    the first two were exponentiated already) or below it (the first chunk, where every logit of
    some columns underflows); NaN propagates as in torch.softmax."""
    from suite.ops.gamma import softmax_base2_

    torch.manual_seed(0)
    source = torch.randn(9, 3, 50, dtype=torch.float64) * (2 if dtype == torch.float16 else 4)  # within the bound
    if spread == "wide_later_chunk":
        source[6:8, 0, :10] = 2000.0  # 2^2000 overflows every dtype; the shifted softmax does not
        source[6:8, 1, :10] = -3000.0
    if spread == "underflow":
        source[:, 2, :5] -= 3000.0  # every term of these columns underflows; after the shift none does
    if spread == "nan":
        source[2, 1, 7] = float("nan")
    logits, made, step = torch.empty_like(source, dtype=dtype), [], 2 if spread == "wide_later_chunk" else 3

    def chunks():
        for start in range(0, 9, step):
            logits[start : start + step].copy_(source[start : start + step])
            made.append(start)
            yield logits[start : start + step]

    out = softmax_base2_(chunks, logits)
    assert out.data_ptr() == logits.data_ptr()
    expected = torch.softmax(source.to(dtype).double() * math.log(2), 0)
    if spread == "nan":
        assert out[:, 1, 7].isnan().all() and not out[:, 0].isnan().any()
        keep = ~expected.isnan()
        out, expected = out.double()[keep], expected[keep]
    tolerance = {torch.float32: 1e-6, torch.float64: 1e-12, torch.bfloat16: 2e-2, torch.float16: 2e-3}[dtype]
    torch.testing.assert_close(out.double(), expected, rtol=tolerance, atol=tolerance)
    assert made == {"narrow": [0, 3, 6], "wide_later_chunk": [0, 2, 4, 6, 0, 2, 4, 6, 8], "underflow": [0, 0, 3, 6],
                    "nan": [0, 0, 3, 6]}[spread]


@low_precision
def test_softmax_base2_sums_the_footprint_in_float32(dtype):
    """Each column's denominator adds K = 49 powers: every output is its power (rounded, as the op
    makes it in the low precision) over their exact sum, rounded once."""
    from suite.ops.gamma import softmax_base2_

    source = torch.randn(49, 4, 60, generator=torch.Generator().manual_seed(0)).to(dtype)
    logits = torch.empty_like(source)

    def chunks():
        for start in range(0, 49, 7):
            yield logits[start : start + 7].copy_(source[start : start + 7])

    powers = torch.exp2(source.double()).to(dtype).double()
    _assert_rounded_once(softmax_base2_(chunks, logits), powers / powers.sum(0))


# ------------------------------------------------------------------------ python -m suite.ops.benchmark
@pytest.mark.parametrize(("argv", "message"), [
    (["--rounds", "1", "--steps", "1"], "--rounds x --steps must be at least 2"),
    (["--batch-size", "0"], "--batch-size must be at least 1"),
])
def test_the_san_benchmark_refuses_settings_before_measuring(argv, message, capsys):
    from suite.ops import benchmark

    with pytest.raises(SystemExit):
        benchmark.main(argv)
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(("argv", "said"), [
    (["--input-size", "64"], "error: --padding: inputs of 64 px leave stage 4 a 2x2 map"),
    (["--input-size", "16", "--padding", "zeros"], "error: --input-size: inputs of 16 px are too small"),
])
def test_the_san_benchmark_names_the_flag_a_model_check_refuses(argv, said, capsys):
    """SAN's size check named its option bare (`padding: ...`), or nothing for a size too small for any
    padding, where this command's settings are --padding and --input-size."""
    from suite.ops import benchmark

    assert benchmark.main(argv) == 2
    assert said in capsys.readouterr().err


def test_benchmark_workers_import_the_suite_that_started_them(tmp_path, monkeypatch):
    """As runs and profile children do (processes.suite_env): a `suite/` in the working folder would
    otherwise be what `python -m suite.ops.benchmark --worker` imports."""
    from suite.ops import benchmark

    (tmp_path / "suite").mkdir()
    (tmp_path / "suite" / "__init__.py").write_text("raise SystemExit('imported the suite of the working folder')\n")
    monkeypatch.chdir(tmp_path)
    worker = benchmark._Worker(benchmark.Job("resnet26", "shift", "infer", batch_size=1, img_size=32, threads=1,
                                             warmup=0, channels_last=False))
    try:
        assert worker.peak_mb > 0
    finally:
        worker.close()


def test_children_of_a_suite_run_in_its_own_checkout_import_that_checkout(monkeypatch):
    """`python -m suite ...` in a checkout that is not installed imports the suite of the working
    folder: processes.suite_env must leave its children that folder (no PYTHONSAFEPATH) to import it
    the same way."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    import suite
    from suite import processes

    root = Path(suite.__file__).resolve().parents[1]
    monkeypatch.chdir(root)
    env = processes.suite_env({k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONSAFEPATH")})
    child = subprocess.run([sys.executable, "-c", "import suite; print(suite.__file__)"], env=env,
                           capture_output=True, text=True, check=True)
    assert Path(child.stdout.strip()).resolve().parents[1] == root


def test_the_san_benchmark_measures_every_configuration_side_by_side(capsys):
    from suite.ops import benchmark

    assert benchmark.main(["--input-size", "64"]) == 2  # too small for SAN10's reflection padding: said at once
    assert "too small to reflect-pad" in capsys.readouterr().err
    assert benchmark.main(["--batch-size", "1", "--input-size", "64", "--padding", "zeros", "--threads", "1",
                           "--rounds", "2", "--steps", "1", "--warmup", "0", "--modes", "infer"]) == 0
    printed = capsys.readouterr().out
    rows = [line for line in printed.splitlines() if line.startswith("| ") and " infer " in line]
    assert len(rows) == len(benchmark.CONFIGS) * len(benchmark.HEAPS)
    assert sorted(row.split("|")[4].strip() for row in rows) == sorted(benchmark.HEAPS * len(benchmark.CONFIGS))
    assert all(float(row.split("|")[5]) > 0 and float(row.split("|")[8]) > 0 for row in rows)  # img/s, peak MiB
    # page faults a timed step: counted for every row (at this size the steady heap may still grow
    # after `settle`, by a few hundred faults a step: no bound is asserted here, see test_measure)
    assert all(int(row.split("|")[9]) >= 0 for row in rows)
    ops = sorted({(row.split("|")[1].strip(), row.split("|")[2].strip()) for row in rows})
    assert ops == [("resnet26", ""), ("san10_pairwise", "shift (ours)"), ("san10_pairwise", "unfold (naive)"),
                   ("san10_patchwise", "shift (ours)"), ("san10_patchwise", "unfold (naive)")]
    for model in ("san10_pairwise", "san10_patchwise"):
        assert re.search(rf"{model} infer: shift vs unfold throughput [\d.]+x \(default heap\), [\d.]+x \(steady heap\); "
                         rf"peak memory [\d.]+x", printed)
        assert re.search(rf"{model} infer: throughput against ResNet26's [\d.]+x \(default heap\), "
                         rf"[\d.]+x \(steady heap\)", printed)
