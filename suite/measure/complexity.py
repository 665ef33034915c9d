"""Parameters, multiply-adds and activations (fvcore convention: one multiply-add = one "flop").

The convention is fixed so the totals line up with the papers' tables (RAN Table 2/7, SAN Table 2,
ResNet-50 4.11 G), which all count multiply-accumulates; SAN's counter also charges ReLU and pooling
1 per element, so SAN's figures are 1-4 % above these:

- counted on the model in eval() (fvcore charges BatchNorm 2 per element in eval, 5 in train),
  at batch 1, in the model's own dtype (the counts do not depend on it), before any torch.compile
  (a compiled model cannot be jit-traced);
- fvcore's default handles: convolution, linear, (b)mm/matmul/einsum MACs; batch/group/layer
  norm 2 (or 5 with affine, group/layer) per element; bilinear up-sampling 4 per output element,
  nearest 1; adaptive average pooling 1 per input element;
- the local-attention ops of `suite.ops` (autograd Functions, traced as `prim::PythonOp.<Name>`)
  through `suite.ops.flops.FLOP_HANDLES`, each documented where it is defined;
- `aten::addcmul`, a BatchNorm folded into a scale-and-shift, 2 per element like batch_norm
  (ATEN_HANDLES), so the total does not depend on how a model applies its BN;
- element-wise arithmetic, activations, fixed-window pooling, padding and data movement are
  charged nothing (ZERO_COST_OPS, plus what fvcore already ignores). They are O(elements), not
  O(elements x channels), and neither fvcore nor the papers count them. Every such op a model ran
  is listed in `skipped_ops`; anything neither counted nor skipped lands in `unsupported_ops`, and
  the tests require that list to be empty for every registered model.
"""

from __future__ import annotations

import importlib.metadata
import numbers
import warnings
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from math import prod
from typing import Any

import torch
from torch import nn

with warnings.catch_warnings():  # importing fvcore.nn jit-scripts a loss: a FutureWarning on new torch
    warnings.simplefilter("ignore", FutureWarning)
    # fvcore's private tables (its version is pinned in COUNTER): both analyses' default handles, so
    # one trace can feed both counts, and the ops it ignores.
    from fvcore.nn.activation_count import _DEFAULT_SUPPORTED_OPS as _FVCORE_ACTIVATION_HANDLES
    from fvcore.nn.flop_count import _DEFAULT_SUPPORTED_OPS as _FVCORE_FLOP_HANDLES
    from fvcore.nn.jit_analysis import _IGNORED_OPS as _FVCORE_IGNORED
    from fvcore.nn.jit_analysis import JitModelAnalysis
    from fvcore.nn.jit_handles import generic_activation_jit, get_shape

from suite.errors import SuiteError, named_as_called
from suite.measure.throughput import torch_settings_kept
from suite.models import create_model, get_model_info, resolve_model_kwargs
from suite.models.sizes import FirstForward, probe_input
from suite.ops.flops import FLOP_HANDLES, zero_flops

COUNTER = f"fvcore {importlib.metadata.version('fvcore')}"

# Costs nothing in this convention (see module docstring); fvcore's own ignore list is added.
ZERO_COST_OPS: frozenset[str] = frozenset(
    {
        # element-wise arithmetic: residual sums, RAN's (1 + M) * T fusion, SAN's relations
        "aten::add", "aten::add_", "aten::sub", "aten::sub_", "aten::rsub", "aten::mul", "aten::mul_",
        "aten::div", "aten::div_", "aten::neg",
        # activations, normalised exponentials, per-channel math (a folded BN's scale = rsqrt(var + eps))
        "aten::sigmoid", "aten::sigmoid_", "aten::tanh", "aten::exp", "aten::softmax", "aten::log_softmax",
        "aten::rsqrt",
        # fixed-window pooling (also written by hand as element-wise maxima) and reductions;
        # adaptive average pooling stays counted, as in fvcore
        "aten::max_pool2d", "aten::avg_pool2d", "aten::maximum", "aten::minimum", "aten::sum", "aten::mean",
        "aten::amax", "aten::amin", "aten::adaptive_max_pool2d",  # max pooling by another name (CBAM's maxima)
        "aten::var_mean", "aten::var", "aten::std",  # RAN's spatial mask standardises each channel
        "aten::linalg_vector_norm", "aten::norm", "aten::clamp_min", "aten::clamp",  # its channel mask: L2
        # padding and data movement
        "aten::reflection_pad2d", "aten::replication_pad2d", "aten::pad", "aten::im2col", "aten::col2im",
        "aten::unfold", "aten::unflatten", "aten::repeat", "aten::expand_as", "aten::clone",
        # tensor creation (SAN's position encoding grid)
        "aten::linspace",
    }
) | frozenset(_FVCORE_IGNORED)


def scale_shift_flops(inputs: list[Any], outputs: list[Any]) -> int:
    """aten::addcmul(shift, x, scale) is an eval-mode BatchNorm folded by hand (SAN's streamed
    gamma): charged as fvcore charges batch_norm in eval, 2 per output element, so folding a BN
    does not change a model's total."""
    return 2 * prod(get_shape(outputs[0]))


# aten ops fvcore has no handle for that do cost compute in this convention
ATEN_HANDLES: dict[str, Any] = {"aten::addcmul": scale_shift_flops}


@dataclass(frozen=True)
class Complexity:
    """One image's counts under this module's convention (see above), with what ran uncounted:
    `suite profile`'s complexity columns, so a notebook's figures are the command's."""

    params: int
    trainable_params: int
    gmacs: float  # 1e9 multiply-adds per image
    macts: float | None  # 1e6 activations per image (outputs of conv/linear/matmul and the attention ops)
    unsupported_ops: dict[str, int]  # op -> occurrences: ran but counted by nobody (must be empty)
    skipped_ops: dict[str, int]  # op -> occurrences: ran and deliberately counted as zero
    counter: str = COUNTER
    macts_error: str | None = None  # why macts is None

    def as_row(self) -> dict[str, Any]:
        return {
            "params": self.params,
            "trainable_params": self.trainable_params,
            "gmacs": self.gmacs,
            "macts": self.macts,
            "unsupported_ops": format_ops(self.unsupported_ops),
            "skipped_ops": format_ops(self.skipped_ops),
            "counter": self.counter,
            **({"macts_error": self.macts_error} if self.macts_error else {}),
        }


def count_params(name: str, **kwargs: Any) -> int:
    """Total parameters of a registered model, built on the meta device (no memory, no init cost)."""
    with torch.device("meta"):
        model = create_model(name, **kwargs)
    return sum(p.numel() for p in model.parameters())


@named_as_called({"model.name": "name"})
@torch_settings_kept()  # the model's initialisation draws from the caller's random stream
def model_complexity(name: str, img_size: int | None = None, **kwargs: Any) -> Complexity:
    """Complexity of a registered model at `img_size` (default: its natural input size).

    The options are checked for that size first, as `suite profile --input-size` checks them, so a
    size the model's pools cannot take is a SuiteError naming `img_size`, not a shape error from
    deep inside the model; so is a size the trace finds it cannot take (a model without a check)."""
    img_size, resolved = sized_options(name, kwargs, img_size)
    model = create_model(name, **resolved)
    with FirstForward(model, name, img_size, key="img_size"):
        return measure_complexity(model, img_size)


def sized_options(name: str, kwargs: Mapping[str, Any], img_size: int | None) -> tuple[int, dict[str, Any]]:
    """The input size (None: the model's natural one) and the model's options checked for it. A size
    that is no count, or that the model's pools cannot take, is a SuiteError naming `img_size`: the
    Python argument of model_complexity and ProfileJob alike (`suite profile` renames it to its flag,
    a run to data.input_size: profile._respelt)."""
    if img_size is None:
        img_size = get_model_info(name).input_size
    elif (img_size := whole_count(img_size, "img_size")) < 1:
        raise SuiteError(f"must be >= 1, got {img_size}", key="img_size")
    try:
        return img_size, resolve_model_kwargs(name, kwargs, input_size=img_size)
    except SuiteError as err:  # a family's check of the input size has no key of its own
        raise (err.where(key="img_size") if err.key is None else err) from None


def whole_count(value: Any, key: str) -> int:
    """`value` as an int, or a SuiteError naming `key`: a size or count given from Python (32.0, "4",
    True) otherwise failed deep inside torch, or was read as something else."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise SuiteError(f"must be a whole number, got {value!r}", key=key)
    return int(value)


def measure_complexity(model: nn.Module, img_size: int, in_chans: int = 3) -> Complexity:
    """Count `model` on a batch of one `img_size` image, in eval mode (its mode is restored).

    Runs on one CPU thread (restored after): the counts do not depend on it, and batch-1 forwards
    run several times faster single-threaded on a loaded machine than with threads that wait for
    each other.
    """
    x = probe_input(model, img_size, in_chans)  # in the model's dtype: the counts do not depend on it
    was_training = model.training
    model.eval()
    try:
        with torch_settings_kept(), torch.no_grad(), warnings.catch_warnings():
            torch.set_num_threads(1)
            warnings.simplefilter("ignore")
            return _count(model, x)
    finally:
        model.train(was_training)


def format_ops(ops: dict[str, int]) -> str:
    """`{"aten::add_": 8}` -> "aten::add_=8" (space-separated, sorted): one CSV cell."""
    return " ".join(f"{op}={n}" for op, n in sorted(ops.items()))


def _count(model: nn.Module, x: torch.Tensor) -> Complexity:
    """Multiply-adds and activations from one jit trace (tracing is most of the cost; fvcore's two
    analyses would trace twice).

    The MACs are FlopCountAnalysis's with our handles over its defaults; a handle of ours that
    charges nothing is listed as skipped. The activations are ActivationCountAnalysis's: the outputs
    of the compute ops, the attention ops among them, their pure data movement (the patchwise
    concatenation, like im2col) not. A failing activation handle leaves only that count missing.
    """
    ours = {op: zero_flops for op in ZERO_COST_OPS} | ATEN_HANDLES | FLOP_HANDLES
    flops = _FVCORE_FLOP_HANDLES | ours
    activations = _FVCORE_ACTIVATION_HANDLES | {
        op: generic_activation_jit() for op, handle in FLOP_HANDLES.items() if handle is not zero_flops}
    skipped: Counter[str] = Counter()
    failures: list[Exception] = []

    def both(op: str) -> Any:
        def handle(inputs: list[Any], outputs: list[Any]) -> Counter[str]:
            counts: Counter[str] = Counter()
            if op in flops:
                counts["macs"] = _sum(flops[op](inputs, outputs))
                if not counts["macs"] and op in ours:
                    skipped[op] += 1
            if op in activations and not failures:
                try:
                    counts["activations"] = _sum(activations[op](inputs, outputs))
                except Exception as exc:  # noqa: BLE001 - an activation count is optional; say why it is missing
                    failures.append(exc)
            return counts

        return handle

    analysis = _quiet(JitModelAnalysis(model, x))
    analysis.set_op_handle(**{op: both(op) for op in flops.keys() | activations.keys()})
    totals = analysis.by_operator()
    return Complexity(
        params=sum(p.numel() for p in model.parameters()),
        trainable_params=sum(p.numel() for p in model.parameters() if p.requires_grad),
        gmacs=totals["macs"] / 1e9,
        macts=None if failures else totals["activations"] / 1e6,
        unsupported_ops=dict(analysis.unsupported_ops()),
        skipped_ops=dict(skipped),
        macts_error=f"{type(failures[0]).__name__}: {failures[0]}" if failures else None,
    )


def _sum(count: Any) -> float:
    """A handle's count: a number, or a Counter of them."""
    return sum(count.values()) if isinstance(count, Counter) else count


def _quiet(analysis: Any) -> Any:
    return analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False).tracer_warnings("none")
