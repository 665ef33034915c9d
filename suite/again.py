"""The arguments that name a spec's runs again on a command line: `SPEC [--preset P] [--out DIR]
[key=value ...]`, the one builder of every hint the suite prints or writes that a user pastes.

The same runs are named three ways, by where the command will be pasted: in the shell that ran
the command (its paths as typed), in any folder (a SLURM resubmission kept for later: absolute
paths), or in one named folder (a report file: its paths relative to the folder holding the store,
so that a table committed with its store reads the same on every clone, and says that folder).
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Sequence
from pathlib import Path


def same_runs(spec: str, preset: str | None, out: Path | None, overrides: Sequence[str], *,
              lasting: bool = False, within: Path | None = None) -> str:
    """`spec` (a name, or a file's path as given) under `preset` and the key=value `overrides` (as
    typed) in store `out` (None: the default one). As given unless `lasting` (run in any folder: a
    spec the suite carries by its name, any other spec and the store by absolute path) or `within`
    (run in that folder: paths under it relative to it, others absolute; its ./results unnamed)."""
    stored = ["--out", str(out)] if out else []
    if lasting or within is not None:
        from suite import ablations, store

        spec = ablations.lasting(spec)
        out = Path(out or store.default_out()).resolve()
        stored = ["--out", str(out)]
        if within is not None:
            spec = under(spec, within) if os.sep in spec else spec
            stored = store_option(out, within)
    return shlex.join([spec, *(["--preset", preset] if preset else []), *stored, *overrides])


def store_option(out: Path, within: Path) -> list[str]:
    """`--out DIR` naming store `out` to a command run in folder `within`: nothing for its ./results."""
    from suite import store

    out = Path(out).resolve()
    return [] if out == Path(within).resolve() / store.DEFAULT_STORE else ["--out", under(str(out), within)]


def under(path: str | Path, within: Path) -> str:
    """`path` relative to folder `within` where it lies under it, else absolute."""
    path = Path(path).resolve()
    try:
        return str(path.relative_to(Path(within).resolve()))
    except ValueError:
        return str(path)


def folder(out: Path) -> str:
    """The folder a report's `within` commands run in, as its files say it: the one holding store `out`."""
    return f"the folder that holds {Path(out).resolve().name}/"
