"""Ablation specs: `load(name_or_path)`, `list()`, `select(patterns)`, `expand(spec, preset=None, overrides=None) -> [RunSpec]`.

Spec files live in the directories of `$SUITE_ABLATIONS` (separated by ':'), in `_specs/` inside
the package (the files of ablations/, as an installed wheel carries them), in `ablations/` next to
the package (a source checkout, installed editable or not at all) or in `./ablations`, searched in
that order.
"""

from __future__ import annotations

import builtins
import fnmatch
import os
from collections.abc import Sequence
from pathlib import Path

from suite.ablations.expand import RunSpec, expand
from suite.ablations.spec import Spec, parse
from suite import PACKAGE_DIR
from suite.errors import SuiteError, unknown
from suite.files import check_lookup


def _carried() -> builtins.list[Path]:
    """The spec folders the package carries (an installed wheel's, a source checkout's): a spec there
    is found by its name from any folder."""
    return [PACKAGE_DIR / "_specs", PACKAGE_DIR.parent / "ablations"]


def spec_dirs() -> builtins.list[Path]:
    """The spec folders that exist, in search order (see the module's docstring)."""
    dirs = [Path(p) for p in os.environ.get("SUITE_ABLATIONS", "").split(os.pathsep) if p]
    for d in dirs:  # an absent folder is passed over; one the OS cannot look up (a name too long, a loop) is said
        check_lookup(d, key="$SUITE_ABLATIONS")
    dirs += [*_carried(), Path.cwd() / "ablations"]
    unique: dict[Path, None] = {}
    for d in dirs:
        if d.is_dir():
            unique.setdefault(d.resolve(), None)
    return builtins.list(unique)


def list() -> builtins.list[str]:  # noqa: A001  (the registry API the issue names)
    """Names of every spec found, sorted."""
    return sorted({p.stem for d in spec_dirs() for p in d.glob("*.yaml")})


def find(name: str) -> Path | None:
    """The file a spec name stands for: the first `NAME.yaml` in spec_dirs."""
    return next((d / f"{name}.yaml" for d in spec_dirs() if (d / f"{name}.yaml").exists()), None)


def lasting(name_or_path: str) -> str:
    """How a command kept for later (a SLURM resubmission, pasted in any folder) names the spec that
    `name_or_path` names here: a spec the package carries by its name, any other by its file's
    absolute path. A name found in ./ablations (or a relative $SUITE_ABLATIONS folder) is found from
    this folder only, and a bare name is its spec even beside a stray file of that name, which as a
    path would be refused."""
    found = find(name_or_path) if _is_word(name_or_path) else None
    if found is None:
        return str(Path(name_or_path).resolve())
    carried = {d.resolve() for d in _carried()}
    return name_or_path if found.resolve().parent in carried else str(found.resolve())


def select(patterns: Sequence[str]) -> builtins.list[str]:
    """Specs to list: a word with fnmatch characters (`san_*`) as the spec names it matches, sorted,
    any other argument (a name or a path) as given, for `load` to read or refuse; in order, each once.
    A pattern that matches no spec is a SuiteError, as a model pattern is in `suite models`."""
    chosen: dict[str, None] = {}
    for pattern in patterns:
        if not (_is_word(pattern) and any(c in pattern for c in "*?[")):
            chosen.setdefault(pattern, None)
            continue
        names = fnmatch.filter(list(), pattern)
        if not names:
            raise SuiteError(f"no spec matches {pattern!r}", key="spec", choices=list())
        chosen.update(dict.fromkeys(n for n in names if n not in chosen))
    return builtins.list(chosen)


def _is_word(text: str) -> bool:
    """A spec's name rather than a file's path: no folder, no YAML suffix."""
    return Path(text).suffix not in (".yaml", ".yml") and "/" not in text and os.sep not in text


def load(name_or_path: str | Path) -> Spec:
    """A spec by name (searched in spec_dirs) or by path to a YAML file. A bare word is a name
    first: a folder or stray file called `quick` in the working directory does not hide the spec."""
    if not str(name_or_path).strip():  # Path("") is the working directory
        raise SuiteError("an empty spec name: name a spec (`suite specs` lists them) or a spec file", key="spec")
    path = Path(name_or_path)
    word = _is_word(str(name_or_path))
    if not (word and find(str(name_or_path)) is not None) and (path.suffix in (".yaml", ".yml") or path.exists()):
        # read as YAML whatever its suffix, a TOML file was told only "a spec must be a mapping"
        if path.suffix not in (".yaml", ".yml") and not path.is_dir():
            raise SuiteError(f"a spec file is YAML, named NAME.yaml; {path.name!r} is not (TOML and other formats are "
                             "not read): write it as YAML and name it so", file=str(path), key="spec")
        spec = parse(path)
        same_name = find(spec.name)  # a file in the spec folders is itself what its name finds (or shadows)
        if same_name is not None and path.resolve().parent not in spec_dirs():
            raise SuiteError(f"another spec has the name {spec.name!r}: {same_name}. Tables, figures, README blocks "
                             "and the run store know a spec by its name, so one would overwrite the other's; give "
                             "this one another name (its file's and `name:`)", file=str(path), key="name")
        _check_case(spec.name, path)
        return spec
    found = find(str(name_or_path))
    if found is None:
        raise unknown("spec", str(name_or_path), list(), key="spec")
    _check_case(str(name_or_path), found)
    return parse(found)


def _check_case(name: str, path: Path) -> None:
    """Refuse spec `name` (file `path`) where a spec of the spec folders has a name differing from it only
    in case (`Quick` beside `quick`): their tables (`Quick.md`, `quick.md`) would be one file where file
    names ignore case (macOS, Windows), each written over the other, as would two such files there."""
    twin = next((p for d in spec_dirs() for p in sorted(d.glob("*.yaml"))
                 if p.stem != name and p.stem.casefold() == name.casefold()), None)
    if twin is not None:
        raise SuiteError(f"spec {name!r} and spec {twin.stem!r} ({twin}) differ only in case: their tables "
                         f"({name}.md, {twin.stem}.md) would be one file where file names ignore case (macOS, "
                         "Windows); rename one (its file's and `name:`)", file=str(path), key="name")


__all__ = ["RunSpec", "Spec", "expand", "find", "lasting", "list", "load", "select", "spec_dirs"]
