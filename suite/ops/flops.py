"""fvcore handles for the local-attention ops (one multiply-add = one flop, fvcore's convention).

fvcore's jit trace shows a custom autograd Function as `prim::PythonOp.<ClassName>` and has no
handle for it, nor for the data-movement ops the patchwise relations use. Register these with
`FlopCountAnalysis(...).set_op_handle(**FLOP_HANDLES)`, under torch.no_grad() as
`suite.measure.complexity` does (see `suite.ops.tracing`). The counts follow the official counter
(hszhao/SAN `util/complexity.py`): aggregation k^2 per output element, subtraction 1 per element.
"""

from __future__ import annotations

from collections.abc import Callable
from math import prod
from typing import Any

from fvcore.nn.jit_handles import get_shape


def aggregation_flops(inputs: list[Any], outputs: list[Any]) -> int:
    """Aggregation(x, w): out_elements * K multiply-adds (K = w.shape[2] footprint positions)."""
    return prod(get_shape(outputs[0])) * get_shape(inputs[1])[2]


def local_relation_flops(inputs: list[Any], outputs: list[Any]) -> int:
    """LocalRelation(phi, psi[, pos]) -> (N, width [+ P], K, L), read from the widths (the op kind is not traced).

    dot product (width 1): C multiply-adds per output element; concatenation (width 2C): 0, it
    only copies; summation, subtraction, Hadamard (width C): 1 per output element. The position
    term pos (relative or absolute, built before: its subtraction is a LocalRelation of its own, its
    absolute neighbours an im2col) is only copied into the channels after delta's: 0.
    """
    out = list(get_shape(outputs[0]))
    channels = get_shape(inputs[0])[1]
    position = get_shape(inputs[2]) if len(inputs) > 2 else None
    out[1] -= position[1] if position else 0  # the position term is copied
    if out[1] == 2 * channels:
        return 0
    if out[1] == 1:
        return prod(out) * channels
    return prod(out)


def zero_flops(inputs: list[Any], outputs: list[Any]) -> int:
    """Pure data movement (the patchwise concatenation, im2col, padding): no multiply-adds."""
    return 0


FLOP_HANDLES: dict[str, Callable[[list[Any], list[Any]], int]] = {
    "prim::PythonOp.Aggregation": aggregation_flops,
    "prim::PythonOp.LocalRelation": local_relation_flops,
    "prim::PythonOp.PatchConcatenation": zero_flops,
    "aten::im2col": zero_flops,
    "aten::reflection_pad2d": zero_flops,
}
