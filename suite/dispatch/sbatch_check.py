"""Whether sbatch takes a submission's extra parameters (`sbatch:`, `--sbatch`), asked of sbatch.

A misspelt key passed every check and was refused only by sbatch, at submission. No list of
sbatch's options is kept, nor read from `sbatch --help`, which leaves out options sbatch takes
(Slurm 22.05: --hint, --open-mode, --wait-all-nodes and a dozen more): sbatch itself parses the
parameters, spelt as the job script gives them (`--KEY=VALUE`; a bare `--KEY` for true), and then
`--usage`, which prints its usage once every option before it has parsed, without reading a script
or asking slurmctld (about 3 ms a call). The parameters with a value go in one call. A bare key
goes alone: one that takes a value would take the `--usage` after it as its value, as in the job
script it takes the next `#SBATCH` line's option. Only a refused call is asked again key by key,
to name each key sbatch refuses. Some of sbatch's complaints about a value name no option
(`--priority=-1`: "Priority must be >= 0"; `--begin=xyz` names it only on its second line), so a
key whose own call sbatch refuses counts as refused once a call without it parses: a cluster whose
sbatch cannot start at all (no slurm.conf) refuses nothing here.

A key sbatch takes as the beginning of one option's name (`mem-per-g`, read as --mem-per-gpu) is
refused too, with the full name: the checks of what a node is asked read full names (such a key
went round them, and its jobs could wait for ever), and a newer sbatch may add an option that
begins the same way, as --mem-per-gpu made `mem-per` ambiguous. The names are sbatch's own, as
it lists them for an ambiguous `--LETTER` (one call a first letter).
"""

from __future__ import annotations

import functools
import gzip
import re
import shutil
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from suite.dispatch.cluster import OWNED, instead
from suite.errors import close_matches

# sbatch reads slurm.conf before its options; an unreadable one it retries for 60 s: no answer
TIMEOUT_S = 10


class _NoAnswer(Exception):
    """sbatch did not finish (or could not start): nothing can be said about the parameters."""


def refusals(params: Mapping[str, Any]) -> dict[str, str]:
    """What is wrong with each of `params` (sbatch parameters as submitit passes them on: key ->
    value, True for a bare flag) that sbatch refuses; nothing where sbatch is absent or silent."""
    if not params or shutil.which("sbatch") is None:
        return {}
    valued = [key for key, value in params.items() if value is not True]
    groups = [valued] if valued else []
    groups += [[key] for key, value in params.items() if value is True]
    found: dict[str, str] = {}
    # the same for every key that needs them: asked once a check (not once a key), afresh each check
    asked = _Asked(bare=functools.cache(lambda: _complaint([])), documented=functools.cache(_documented),
                   beginning=functools.cache(lambda letter: _beginning(letter, asked)))
    try:
        for group in groups:
            if len(group) > 1 and _complaint([_token(k, params[k]) for k in group]) is None:
                continue
            for key in group:
                said = _refusal(key, params[key], asked)
                if said is not None:
                    found[key] = said
        for key in params:
            if key not in found and (full := _abbreviates(key, asked)) is not None:
                found[key] = (f"sbatch would read it as --{full}, whose name it begins: write {full!r} (the "
                              "checks here read full names, and a newer sbatch may add an option that begins "
                              "the same way)")
    except _NoAnswer:
        return {}
    return {key: found[key] for key in params if key in found}  # in the order given


def _token(key: str, value: Any) -> str:
    """The parameter as the job script gives it to sbatch (submitit: `--KEY`, or `--KEY=VALUE`)."""
    return f"--{key}" if value is True else f"--{key}={value}"


@dataclass(frozen=True)
class _Asked:
    """sbatch's answers that do not depend on the key judged, each asked at most once a check."""

    bare: Callable[[], str | None]  # its complaint about no options at all (None: it parses them)
    documented: Callable[[], list[str]]  # `_documented`
    beginning: Callable[[str], list[str]]  # `_beginning`, once a letter


def _refusal(key: str, value: Any, asked: _Asked) -> str | None:
    """Why sbatch refuses the one parameter `key` (None: it takes it, or its complaint names no key)."""
    said = _complaint([_token(key, value)])
    if said is None:
        return None
    if value is True and not _getopt_refusal(said, key):  # it took `--usage` as its value, or sbatch is broken
        alone = _complaint([_token(key, value)], usage=False)  # getopt: "option '--KEY' requires an argument"
        if alone is None or not _names(alone, key) or "requires an argument" not in alone:
            return None
        return (f"sbatch option --{key} takes a value, which a bare key (a flag) does not give: in the job script "
                "it would take the next option as its value")
    if not _names(said, key) and asked.bare() is not None:  # sbatch refuses even no options: nothing said of this
        return None
    if "unrecognized option" in said:
        return _unknown(key, asked.documented())
    if "doesn't allow an argument" in said:
        return f"sbatch option --{key} takes no value: give the key bare (`--sbatch {key}`, or `{key}: true`)"
    return f"sbatch refuses it: {said}"


def _abbreviates(key: str, asked: _Asked) -> str | None:
    """The long option sbatch reads `key` as where `key` only begins its name (sbatch's getopt_long
    takes any beginning that fits one option alone): None where `key` is a whole name, or no option
    begins with it (sbatch refuses it), or the name cannot be told."""
    names = asked.beginning(key[:1])
    longer = [name for name in names if name.startswith(key)]
    return longer[0] if key not in names and len(longer) == 1 else None


def _beginning(letter: str, asked: _Asked) -> list[str]:
    """sbatch's long options that begin with `letter`, as sbatch names them when `--LETTER` is
    ambiguous (its `possibilities`), so none it takes is missed as `--help` would miss it; where only
    one option begins so (sbatch takes `--j` as --job-name, naming it nowhere), the documented ones."""
    said = _complaint([f"--{letter}"]) or ""
    if "is ambiguous" in said:
        return re.findall(r"'--([\w-]+)'", said.partition("possibilities:")[2])
    if "unrecognized option" in said:
        return []
    return [name for name in asked.documented() if name.startswith(letter)]


def _getopt_refusal(said: str, key: str) -> bool:
    """Whether `said` is sbatch's option parser refusing the key itself (not a value)."""
    return _names(said, key) and ("unrecognized option" in said or "is ambiguous" in said)


def _names(said: str, key: str) -> bool:
    """Whether sbatch's complaint `said` is about option `--key` (`--mail` is not `--mail-type`)."""
    return re.search(rf"--{re.escape(key)}(?![\w-])", said) is not None


def _unknown(key: str, documented: Sequence[str]) -> str:
    """An unknown key, with the `documented` sbatch option it may be a misspelling of."""
    said = f"sbatch has no option --{key}"
    hint = close_matches(key, documented, n=1)
    if not hint:
        return said
    owned = f" (not set here: {instead(hint[0])})" if hint[0] in OWNED else ""
    return f"{said}; did you mean {hint[0]!r}?{owned}"


def _documented() -> list[str]:
    """The long options `sbatch --help` and sbatch's man page name: enough for a did-you-mean (never
    to judge a key, as either may leave out options sbatch takes). `--help` alone leaves out a dozen
    the man page has (Slurm 22.05: `hint`, `open-mode`, `wait-all-nodes`, `prefer`, ...), so a
    misspelling of one of those got no hint; the man page is read only where it is installed."""
    return list(dict.fromkeys([*_help_options(), *_man_options()]))


def _help_options() -> list[str]:
    """The long options `sbatch --help` lists (all a man page-less install offers)."""
    try:
        done = subprocess.run(["sbatch", "--help"], capture_output=True, text=True, timeout=TIMEOUT_S,
                              stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return []
    return re.findall(r"--([a-z][a-z0-9-]+)", done.stdout)


def _man_options() -> list[str]:
    """The long options sbatch's man page (its roff source, as `man -w` finds it) describes: those
    on the heading lines of its option list (`\\fB\\-\\-hint\\fR=<type>`), not every one its prose mentions."""
    try:
        found = subprocess.run(["man", "-w", "sbatch"], capture_output=True, text=True, timeout=TIMEOUT_S,
                               stdin=subprocess.DEVNULL).stdout.strip()
        if not found:  # no man page installed
            return []
        path = Path(found.splitlines()[0])
        raw = path.read_bytes()
        text = (gzip.decompress(raw) if path.suffix == ".gz" else raw).decode(errors="replace")
    except (OSError, subprocess.TimeoutExpired, gzip.BadGzipFile, EOFError):
        return []
    headings = [line.replace("\\-", "-") for line in text.splitlines() if line.startswith("\\fB\\-")]
    return [name for line in headings for name in re.findall(r"--([a-z][a-z0-9-]+)", line)]


def _complaint(tokens: Sequence[str], *, usage: bool = True) -> str | None:
    """sbatch's complaint about the options `tokens` (followed by `--usage`), None if it parsed
    them (it printed its usage): its lines, without the `sbatch: error: ` prefix or the pointer to
    `sbatch --help`, joined by '; '."""
    try:
        done = subprocess.run(["sbatch", *tokens, *(["--usage"] if usage else [])], capture_output=True, text=True,
                              timeout=TIMEOUT_S, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        raise _NoAnswer from None
    if usage and done.returncode == 0 and done.stdout.startswith("Usage: sbatch"):
        return None
    lines = [re.sub(r"^sbatch: (error: )?", "", line.strip()) for line in done.stderr.splitlines()
             if line.strip() and not line.startswith('Try "sbatch --help"')]
    return "; ".join(lines) or f"exit status {done.returncode}"
