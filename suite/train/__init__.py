"""Training engine: recipes, loop, checkpoint/resume, distributed.

`run(config, run_dir=None, *, resume=True, progress=True, on_epoch_end=None) -> dict` trains one
RunConfig (suite.train.loop); `request_checkpoint()` asks a running loop to checkpoint and stop
(suite.train.checkpoint). Both are imported lazily: suite.config reads RECIPES from here and must
not pull in torch.
"""

from typing import Any

from suite.train.recipes import RECIPES, Recipe

__all__ = ["RECIPES", "Diverged", "Preempted", "Recipe", "request_checkpoint", "run"]

_LAZY = {"run": "loop", "Diverged": "loop", "Preempted": "checkpoint", "request_checkpoint": "checkpoint"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"suite.train.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'suite.train' has no attribute {name!r}")
