"""Registered models. Importing this package registers every family."""

from suite.models.registry import (
    ModelInfo,
    Option,
    create_model,
    get_model_info,
    list_models,
    register_model,
    resolve_model_kwargs,
)
from suite.models import ran, resnet, san  # noqa: E402,F401  (registration side effect)
from suite.models.official import load_official_san  # noqa: E402

__all__ = [
    "ModelInfo",
    "Option",
    "create_model",
    "get_model_info",
    "list_models",
    "load_official_san",
    "register_model",
    "resolve_model_kwargs",
]
