"""Which spec file each spec name stands for in a run store.

The store's tables, figures and run records know a spec by its name alone, so two spec files of one
name reporting into one store would overwrite each other's tables without a word. The first file
to use a name there keeps it while it exists; a file moved or renamed since hands it over.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from suite.ablations.spec import Spec
from suite.errors import SuiteError, SuiteWarning

RECORD = "specs.json"  # {spec name: the spec file's resolved path}


def claim(out: Path, spec: Spec, *, record: bool = True) -> None:
    """Record `spec`'s file as the one its name stands for in store `out` (only check, without
    `record`: a dry run writes nothing), or raise naming the other file that holds the name. Specs
    of the spec folders are unique by name already (see `suite.ablations.load`): not recorded."""
    from suite import ablations, store

    mine = spec.path.resolve()
    if mine.parent in ablations.spec_dirs():
        return
    path = Path(out) / RECORD
    try:
        names = store.read_json(path) if path.exists() else {}
        if not isinstance(names, dict):
            raise SuiteError("corrupt record (not a mapping of spec names to files)", file=str(path))
    except SuiteError as err:  # bookkeeping only: no run or table is lost with it, so no command is stopped
        warnings.warn(f"{err}; read as empty{', set aside and written again' if record else ''}", SuiteWarning,
                      stacklevel=2)
        if record:
            store.set_aside(path)
        names = {}
    held = names.get(spec.name)
    if isinstance(held, str) and held != str(mine) and Path(held).is_file():
        raise SuiteError(f"{out} already holds the runs and tables of another spec named {spec.name!r}, {held}: "
                         "its tables and figures would be overwritten; give this one another name (its file's and "
                         "`name:`), or another --out", file=str(spec.path), key="name")
    twin = next((n for n, f in names.items() if n != spec.name and n.casefold() == spec.name.casefold()
                 and isinstance(f, str) and Path(f).is_file()), None)
    if twin is not None:  # macOS' and Windows' file names ignore case: twin.md and Twin.md are one file
        raise SuiteError(f"{out} already holds the runs and tables of spec {twin!r}, {names[twin]}, a name differing "
                         f"from {spec.name!r} only in case: their tables would be one file where file names ignore "
                         "case (macOS, Windows); give this one another name (its file's and `name:`), or another "
                         "--out", file=str(spec.path), key="name")
    if record and held != str(mine):
        path.parent.mkdir(parents=True, exist_ok=True)  # the store, as `suite run` starts its first runs
        store.write_json(path, {**names, spec.name: str(mine)})


def recorded(out: Path) -> dict[str, Path]:
    """The spec files the names of store `out` stand for, those still there: a spec run by its path
    is listed by its name (`suite status` of the store), which the spec folders do not know. Read
    once by a command, whatever number of specs it names."""
    from suite import store

    path = Path(out) / RECORD
    try:
        names = store.read_json(path) if path.is_file() else {}
    except SuiteError:  # `claim` says so where it matters; a hint is only left out
        return {}
    if not isinstance(names, dict):
        return {}
    return {name: Path(held) for name, held in names.items() if isinstance(held, str) and Path(held).is_file()}
