"""Generated tables inside hand-written Markdown (pycls' MODEL_ZOO.md style).

A block is delimited by marker lines

    <!-- suite:report NAME -->
    ... replaced on every `suite report SPEC --into FILE` ...
    <!-- /suite:report -->

where NAME is the report's name (the spec, or `spec.preset`). Only what lies between the markers
of that name changes; everything else is kept byte for byte (line endings included: a CRLF file
gets a CRLF table). Markers are checked over the whole file first (an opener inside a block, a
closer without opener, an unclosed block), so a broken file is never half rewritten. Marker lines
inside fenced code blocks (``` or ~~~) or indented by 4 spaces or more are text, e.g. documentation
showing how to write one. The file keeps its mode.
"""

from __future__ import annotations

import re
from pathlib import Path

from suite import files
from suite.errors import SuiteError, not_utf8

# A marker is indented by at most 3 spaces: 4 make an indented code block (CommonMark), text again.
# The byte-order mark some editors put before a file's first line is not indentation.
OPEN = re.compile(r"^\ufeff? {0,3}<!--\s*suite:report\s+(\S+)\s*-->\s*$")
CLOSE = re.compile(r"^\ufeff? {0,3}<!--\s*/suite:report\s*-->\s*$")
LINE = re.compile(r"[^\n]*\n|[^\n]+")
FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")  # CommonMark: a fence opens with 3+ backticks or tildes


def _fenced(lines: list[str]) -> list[bool]:
    """Per line: inside a fenced code block (the fence lines included)."""
    out, fence = [], ""
    for line in lines:
        m = FENCE.match(line)
        if not fence and m and not (m.group(1)[0] == "`" and "`" in line[m.end():]):
            fence = m.group(1)
            out.append(True)
        elif fence and m and m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence) and not line[m.end():].strip():
            fence = ""
            out.append(True)
        else:
            out.append(bool(fence))
    return out


def splice(text: str, name: str, content: str, *, file: str = "<text>") -> str:
    """`text` with the body of every `name` block replaced by `content`."""
    # Lines end at \n only (a CRLF line keeps its \r): str.splitlines would also end them at the
    # Unicode separators (U+2028, U+0085, ...) Markdown reads as text, so line numbers and markers would shift.
    lines = LINE.findall(text)
    blocks: list[tuple[str, int, int]] = []  # (name, opener index, closer index)
    opened: tuple[str, int] | None = None
    for i, (line, fenced) in enumerate(zip(lines, _fenced(lines))):
        if fenced:
            continue
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
        newline = "\r\n" if lines[opener].endswith("\r\n") else "\n"  # the file's own line ending
        out += [*lines[start:opener + 1], newline, body.replace("\n", newline), newline]
        start = closer
    out += lines[start:]
    return "".join(out)


def splice_file(path: Path, name: str, content: str, *, write: bool = True) -> None:
    """Rewrite `path` in place (atomically) with the block `name` filled; `write=False` only
    checks that it could be (the file is readable and has the block)."""
    try:  # newline="": keep CRLF as it is (text mode would turn it into LF)
        with open(path, encoding="utf-8", newline="") as f:
            text = f.read()
    except FileNotFoundError:
        raise SuiteError(f"no such file: the table fills a block of a file that exists; write the lines "
                         f"<!-- suite:report {name} --> and <!-- /suite:report --> in it where the table goes",
                         file=str(path)) from None
    except OSError as exc:
        raise SuiteError(f"cannot read: {exc.strerror}", file=str(path)) from None
    except UnicodeDecodeError as exc:
        raise SuiteError(not_utf8(exc), file=str(path)) from None
    new = splice(text, name, content, file=str(path))
    if write and new != text:
        files.write_text(Path(path), new)
