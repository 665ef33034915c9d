"""A report's name: the stem of its files (`<out>/<name>.md`, `figures/<name>_curves.svg`) and
its `--into` marker. One name per table, so that two commands tabulating different runs, or the
same runs' other metrics, never write, or `suite report --all` prune, one another's files.

The name is the spec, then `.PRESET` (`san_main.smoke`), then each command-line override that
picks the runs, as a preset does, as `+KEY=VALUE` (`quick.smoke+epochs=1`), then, where `--metric`
chose other metrics than the spec's own, each of them in the table's order as `@METRIC`
(`quick@top5_err`). Spec and preset names hold none of '.', '+' or '@' (suite.ablations.spec.NAME),
so the spec's name runs to the first of them: no spec's name is another's preset's, and no report
with overrides or metrics has a name of one without. Overrides are sorted by key, dotted
(`model={base_width: 8}` is `model.base_width=8`) and written as a command line types them back
(suite.schema.show_value), so one set of runs has one name however it was typed. A character that
a file name, a Markdown link or a marker line could not carry as it is (`/`, a space, a quote, '+',
'@', '~') becomes '_', and then the name ends with `~` and a digest of the overrides and metrics as
written, as it does when they are too long for a file name: two never share one.
So does a name whose overrides or metrics hold a letter whose case a file system may ignore (macOS',
Windows': `model.act=ReLU` and `model.act=relu` would be one file).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from typing import Any

from suite.config import flatten
from suite.schema import show_value

SAFE = re.compile(r"[\w.=-]")  # what an override keeps as typed in a name; '+', '@' and '~' are the name's own marks
# Bytes of the whole name: its longest file, a figure's temporary (`.<name>_tradeoff.svg.<writer>.<tag>.locked.tmp`,
# suite.files), adds 56 to it, and most file systems cap a file name at 255 bytes.
NAME_BYTES = 199
DIGEST = 8  # hex digits


def report_name(spec: str, preset: str | None = None, overrides: Mapping[str, Any] | None = None,
                metrics: Sequence[str] = ()) -> str:
    """The name of the report of `spec`'s runs under `preset` and the command line's `overrides`,
    tabulating `metrics` (empty: the spec's own, which the name leaves out)."""
    name = spec if preset is None else f"{spec}.{preset}"
    items = sorted(f"{k}={show_value(v)}" for k, v in flatten(dict(overrides or {})).items())
    marked = [f"+{item}" for item in items] + [f"@{metric}" for metric in metrics]
    if not marked:
        return name
    readable = "".join(text[0] + "".join(c if SAFE.fullmatch(c) else "_" for c in text[1:]) for text in marked)
    if readable == "".join(marked) and readable == readable.casefold() \
            and len((name + readable).encode()) <= NAME_BYTES:
        return name + readable
    digest = "~" + hashlib.sha256("\n".join([*items, *marked[len(items):]]).encode()).hexdigest()[:DIGEST]
    room = NAME_BYTES - len((name + digest).encode())
    while len(readable.encode()) > max(room, 0):  # cut whole characters (UTF-8), keeping the digest
        readable = readable[:-1]
    return name + readable + digest
