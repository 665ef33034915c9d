"""Training engine: recipes, loop, checkpoint/resume, distributed."""

from suite.train.recipes import RECIPES, Recipe

__all__ = ["RECIPES", "Recipe"]
