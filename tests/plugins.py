"""Helpers for tests of model plugins: a real distribution on disk, found by importlib.metadata.

`write_plugin` lays out what `pip install` would leave in site-packages (the package, and a
`<name>-<version>.dist-info` directory with METADATA and entry_points.txt), without pip, so a
folder on sys.path (in-process) or PYTHONPATH (a child process, a SLURM job) holds an installed
plugin. `fresh_registry` makes the next lookup load the plugins again, and puts the registry back
as it was afterwards, so no test's plugin models leak into another test.
"""

from __future__ import annotations

import contextlib
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

from suite.models import plugins, registry

# A small model with the options a user's attention module has: a Literal, an int, a float.
TINY_SE = '''\
from typing import Literal

from torch import nn

from suite.models import register_model


def _check(options, input_size):
    from suite.errors import SuiteError
    if options["reduction"] < 1:
        raise SuiteError(f"must be at least 1, got {options['reduction']}", key="reduction")


class SEBlock(nn.Module):
    """Squeeze-and-excitation: channel attention from pooled features."""

    def __init__(self, channels: int, reduction: int, gate: str) -> None:
        super().__init__()
        hidden = max(1, channels // reduction)
        self.fc = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(channels, hidden, 1), nn.ReLU(),
                                nn.Conv2d(hidden, channels, 1), nn.Sigmoid() if gate == "sigmoid" else nn.Hardsigmoid())

    def forward(self, x):
        return x * self.fc(x)


@register_model(input_size=32, label="Tiny-SE", check=_check)
def {name}(*, num_classes: int = 10, width: int = 8, reduction: int = 4,
           gate: Literal["sigmoid", "hard"] = "sigmoid", dropout: float = 0.0) -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
                         SEBlock(width, reduction, gate), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Dropout(dropout), nn.Linear(width, num_classes))
'''


def tiny_se(name: str = "tiny_se_net") -> str:
    """The source of a module registering a tiny SE network as `name`."""
    return TINY_SE.replace("{name}", name)


def write_plugin(root: Path, distribution: str, modules: dict[str, str], entry_points: dict[str, str],
                 version: str = "0.1") -> None:
    """An installed distribution under `root`: `modules` (dotted name -> source) and its
    `attention_suite.models` entry points (name -> `module` or `module:function`)."""
    for dotted, source in modules.items():
        path = root.joinpath(*dotted.split("."))
        path.mkdir(parents=True, exist_ok=True)  # each module a package: `a.b` is a/b/__init__.py
        (path / "__init__.py").write_text(textwrap.dedent(source))
    info = root / f"{distribution}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {distribution}\nVersion: {version}\n")
    lines = [f"{name} = {value}" for name, value in entry_points.items()]
    (info / "entry_points.txt").write_text(f"[{plugins.GROUP}]\n" + "\n".join(lines) + "\n")


@contextlib.contextmanager
def fresh_registry(root: Path) -> Iterator[None]:
    """The next lookup loads the plugins on sys.path then; afterwards the registry and the plugins'
    state are as before, and the modules imported from `root` are forgotten."""
    models, loaded, failures = dict(registry._REGISTRY), registry._plugins_loaded, list(plugins.failures)
    registry._plugins_loaded = False
    plugins.failures.clear()
    try:
        yield
    finally:
        registry._REGISTRY.clear()
        registry._REGISTRY.update(models)
        registry._plugins_loaded = loaded
        plugins.failures[:] = failures
        for name, module in list(sys.modules.items()):
            if root in Path(getattr(module, "__file__", None) or "/").parents:
                del sys.modules[name]
