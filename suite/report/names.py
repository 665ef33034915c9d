"""A report's name: the stem of its files (`<out>/<name>.md`, `figures/<name>_curves.svg`) and
its `--into` marker. One name per set of runs, so that two commands tabulating different runs
never write, or `suite report --all` prune, one another's files.

The name is the spec, then `.PRESET` (`san_main.smoke`), then each command-line override, which
changes the runs as a preset does, as `+KEY=VALUE` (`quick.smoke+epochs=1`). Spec and preset
names hold neither '.' nor '+' (suite.ablations.spec.NAME), so the first '.' starts the preset
and the first '+' the overrides: no spec's name is another's preset's, and no report with
overrides has a name of one without. Overrides are sorted by key, dotted (`model={base_width: 8}`
is `model.base_width=8`) and written as a command line types them back (suite.schema.show_value),
so one set of runs has one name however it was typed. A character that a file name, a Markdown
link or a marker line could not carry as it is (`/`, a space, a quote, '+', '~') becomes '_',
and then the name ends with `~` and a digest of the overrides as written, as it does when they
are too long for a file name: two sets of overrides never share one.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any

from suite.config import flatten
from suite.schema import show_value

SAFE = re.compile(r"[\w.=-]")  # what an override keeps as typed in a name; '+' and '~' are the name's own marks
# Bytes of the whole name: its longest file, a figure's temporary (`.<name>_tradeoff.svg.<writer>.<tag>.locked.tmp`,
# suite.files), adds 56 to it, and most file systems cap a file name at 255 bytes.
NAME_BYTES = 199
DIGEST = 8  # hex digits


def report_name(spec: str, preset: str | None = None, overrides: Mapping[str, Any] | None = None) -> str:
    """The name of the report of `spec`'s runs under `preset` and the command line's `overrides`."""
    name = spec if preset is None else f"{spec}.{preset}"
    items = sorted(f"{k}={show_value(v)}" for k, v in flatten(dict(overrides or {})).items())
    if not items:
        return name
    readable = "".join("+" + "".join(c if SAFE.fullmatch(c) else "_" for c in item) for item in items)
    if readable == "".join("+" + item for item in items) and len((name + readable).encode()) <= NAME_BYTES:
        return name + readable
    digest = "~" + hashlib.sha256("\n".join(items).encode()).hexdigest()[:DIGEST]
    room = NAME_BYTES - len((name + digest).encode())
    while len(readable.encode()) > max(room, 0):  # cut whole characters (UTF-8), keeping the digest
        readable = readable[:-1]
    return name + readable + digest
