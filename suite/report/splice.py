"""Generated tables inside hand-written Markdown (pycls' MODEL_ZOO.md style).

A block is delimited by marker lines

    <!-- suite:report NAME -->
    ... replaced on every `suite report SPEC --into FILE` ...
    <!-- /suite:report -->

where NAME is the report's name (the spec, or `spec.preset`). Only what lies between the markers
of that name changes; everything else is kept byte for byte. Markers are checked over the whole
file first (an opener inside a block, a closer without opener, an unclosed block), so a broken
file is never half rewritten.
"""

from __future__ import annotations

import re
from pathlib import Path

from suite.errors import SuiteError

OPEN = re.compile(r"^\s*<!--\s*suite:report\s+(\S+)\s*-->\s*$")
CLOSE = re.compile(r"^\s*<!--\s*/suite:report\s*-->\s*$")


def splice(text: str, name: str, content: str, *, file: str = "<text>") -> str:
    """`text` with the body of every `name` block replaced by `content`."""
    lines = text.splitlines(keepends=True)
    blocks: list[tuple[str, int, int]] = []  # (name, opener index, closer index)
    opened: tuple[str, int] | None = None
    for i, line in enumerate(lines):
        if m := OPEN.match(line):
            if opened is not None:
                raise SuiteError(f"marker for {m.group(1)!r} inside the unclosed block {opened[0]!r} opened on line "
                                 f"{opened[1] + 1}", file=file, line=i + 1)
            opened = (m.group(1), i)
        elif CLOSE.match(line):
            if opened is None:
                raise SuiteError("closing marker <!-- /suite:report --> without an opening marker", file=file, line=i + 1)
            blocks.append((opened[0], opened[1], i))
            opened = None
    if opened is not None:
        raise SuiteError(f"block {opened[0]!r} is never closed (add <!-- /suite:report -->)", file=file,
                         line=opened[1] + 1)
    targets = [b for b in blocks if b[0] == name]
    if not targets:
        raise SuiteError(f"no <!-- suite:report {name} --> ... <!-- /suite:report --> block to fill", file=file,
                         choices=sorted({b[0] for b in blocks}) or None)
    body = content if content.endswith("\n") else content + "\n"
    out, start = [], 0
    for _, opener, closer in targets:
        out += [*lines[start:opener + 1], "\n", body, "\n"]
        start = closer
    out += lines[start:]
    return "".join(out)


def splice_file(path: Path, name: str, content: str) -> None:
    """Rewrite `path` in place (atomically) with the block `name` filled."""
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise SuiteError(f"cannot read: {exc.strerror}", file=str(path)) from None
    new = splice(text, name, content, file=str(path))
    if new != text:
        tmp = Path(path).with_name(f".{Path(path).name}.tmp")
        tmp.write_text(new)
        tmp.replace(path)
