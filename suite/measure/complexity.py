"""Parameter and multiply-add counts (fvcore convention: one multiply-add = one 'flop')."""

from __future__ import annotations

from typing import Any

import torch

from suite.models import create_model


def count_params(name: str, **kwargs: Any) -> int:
    """Total parameters of a registered model, built on the meta device (no memory, no init cost)."""
    with torch.device("meta"):
        model = create_model(name, **kwargs)
    return sum(p.numel() for p in model.parameters())
