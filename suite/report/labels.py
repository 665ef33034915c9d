"""What a report calls its axes and their values: the papers' names where known, so that a
regenerated table reads like the paper's (Attention-92, noise level 10%, CIFAR-10, ARL).

A value's label comes from the spec's `labels:` for its axis, else from what the value names (a
registered model's `label`, a data set's `title`), else it is the value as the spec writes it
(`schema.show`: null, true, 40).
An axis is titled by the spec's `labels.<axis>.name`, else by its key. Only the display changes:
the CSV keeps every axis' key and raw values (the runs' identity) and adds a `label_<axis>`
column beside them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from suite.ablations.spec import Spec
from suite.data.catalog import DATASETS
from suite.errors import SuiteError
from suite.models import get_model_info
from suite.schema import show


def described(axis: str, value: Any) -> str | None:
    """What a value's own metadata calls it: a registered model's label, a data set's title."""
    if axis == "model.name" and isinstance(value, str):
        try:
            return get_model_info(value).label
        except SuiteError:  # not registered (a store's stale value): no name but its own
            return None
    if axis == "data.name" and isinstance(value, str) and value in DATASETS:
        return DATASETS[value].title
    return None


@dataclass(frozen=True)
class Labels:
    """Axis titles and value labels (keyed by `show(value)`). Only names someone gave are kept
    (the spec, or metadata naming a value otherwise than the config does), so an axis nobody
    named reads as its key and values."""

    titles: dict[str, str] = field(default_factory=dict)
    values: dict[str, dict[str, str]] = field(default_factory=dict)

    def title(self, axis: str) -> str:
        return self.titles.get(axis, axis)

    def heading(self, axis: str) -> str:
        """The title with the key it stands for, for legends: `noise level (data.clean_ratio)`."""
        title = self.title(axis)
        return title if title == axis else f"{title} ({axis})"

    def value(self, axis: str, shown: str) -> str:
        """A value under its axis' title (a row's cell): the label, or the value as written."""
        return self.values.get(axis, {}).get(shown, shown)

    def alone(self, axis: str, shown: str) -> str:
        """A value without its axis beside it (a column block's heading): the label, or title=value
        (a titled axis' blocks read as its title, as its row column does, not as its key)."""
        return self.values.get(axis, {}).get(shown) or f"{self.title(axis)}={shown}"


def build(spec: Spec, axes: Iterable[str], taken: Mapping[str, Iterable[Any]]) -> Labels:
    """The labels of `axes`, for the values `taken` (axis -> the values its runs have). Two values
    that would share a label (ran56 and ran56_cifar are both Attention-56) keep their own names
    beside it: `Attention-56 (ran56_cifar)`."""
    titles, values = {}, {}
    for axis in axes:
        own = spec.labels.get(axis)
        if own is not None and own.name:
            titles[axis] = own.name
        given = {show(v): text for v, text in own.values.items()} if own is not None else {}
        labels: dict[str, str] = {}
        for shown, value in {show(v): v for v in taken.get(axis, ())}.items():
            text = given.get(shown) or described(axis, value)
            if text and (text != shown or shown in given):  # the spec's `summation: summation` is a label too
                labels[shown] = text
        shared = {t for t, n in Counter(labels.values()).items() if n > 1}
        values[axis] = {s: f"{t} ({s})" if t in shared else t for s, t in labels.items()}
    return Labels(titles, {a: v for a, v in values.items() if v})
