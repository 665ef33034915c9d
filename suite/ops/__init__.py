"""Local self-attention ops of SAN in pure PyTorch (CPU and GPU), with fvcore FLOP handles.

The official ops are CuPy CUDA kernels (`hszhao/SAN: lib/sa`); these are the same functions built
from PyTorch ops, with hand-written backward passes that never keep the k^2-expanded value tensor.
"""

from suite.ops.aggregation import Aggregation, aggregation
from suite.ops.backend import BACKENDS, current_backend, use_backend
from suite.ops.relations import (
    PAIRWISE_RELATIONS,
    PATCHWISE_RELATIONS,
    LocalRelation,
    local_relation,
    pairwise_relation,
    pairwise_width,
    patchwise_relation,
    patchwise_width,
    position_grid,
    relative_grid,
)
from suite.ops.window import PADDINGS, Window

__all__ = [
    "BACKENDS",
    "PADDINGS",
    "PAIRWISE_RELATIONS",
    "PATCHWISE_RELATIONS",
    "Aggregation",
    "LocalRelation",
    "Window",
    "aggregation",
    "current_backend",
    "local_relation",
    "pairwise_relation",
    "pairwise_width",
    "patchwise_relation",
    "patchwise_width",
    "position_grid",
    "relative_grid",
    "use_backend",
]
