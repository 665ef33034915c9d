"""GPUs, CPUs, memory, tmp disk and layout a node is asked for through raw sbatch parameters
(`sbatch: {gres: gpu:2}`, `--sbatch gpus=2`, `--sbatch mincpus=9`).

The `gpus_per_node` option is compared with the nodes' GPUs before a submission; these
parameters went round that check, and a count above a node's waited for ever as BadConstraints.
Read here in the forms `man sbatch` (Slurm 22.05) documents: `--gpus`, `--gpus-per-task` and
`--gpus-per-socket` take `[type:]count` (a comma-separated list for several types), `--gres` a list
of `name[[:type]:count]` whose count defaults to 1; a count may end in k, m, g, t or p (times 1024
each). A count that is no number is refused here, naming the key: sbatch takes `gpus=abc` and the
job never starts, and refuses `gpus=1.5` at submission in words that name no key.

`--gpus-per-socket` asks at least its count of a node, whatever `--sockets-per-node` (which sbatch
needs beside it) says: on the test cluster (gpu:2, no socket binding) gpus-per-socket=3 waited as
BadConstraints while 2 ran with sockets-per-node=2, so more sockets are not read as more GPUs.
The GPU types these name (`gpu_types`) must each be on some node: slurmctld keeps a job asking a
type no node has waiting for ever (BadConstraints), `gpus=gpu:1` included (a type named `gpu`).
Each type's count (`gpus_of_type_per_node`) is compared with the most a node has of that type, as
sinfo's `%G` lists them (`gpus_of_node`: slurm.conf's `Gres=` syntax, which never mixes typed and
untyped GPUs on one node), so `gres=gpu:a100:3` is refused where each node has 2 a100s, whatever its
other GPUs. Left to Slurm, as what they ask of a node cannot be told for sure: several types asked
together (each is compared alone, not whether one node has them all), a list naming one type twice or
mixing a typed entry with an untyped one, a node's `no_consume` GPUs, and any other shape (more
colons than the forms have). Keys are read by their full names: `sbatch_check` refuses
an abbreviation (`gpus-per-t`).

Beside the GPUs, `other_per_node` reads the parameters whose ask of a node sinfo's CPUs (%c),
memory (%m), tmp disk (%d) and layout (%z, sockets:cores:threads) judge for sure, which sbatch took
as well and whose jobs never ran: `--mincpus`, `--cpus-per-gpu`, `--mem-per-cpu`, `--mem-per-gpu`,
`--tmp`, `--sockets-per-node`, `--cores-per-socket` and `--threads-per-core` (each a least number of
a node; on the test cluster, 8:1:1, sockets-per-node=9, cores-per-socket=2 and threads-per-core=2
each waited as BadConstraints, sockets-per-node=8 ran). A malformed value of these sbatch refuses
itself, naming the option (`sbatch_check` asks it). Left to Slurm: any other parameter
(`--ntasks-per-gpu`, `--mem-bind`, `--extra-node-info`, ...), which asks for a binding or a layout
in a form that sinfo's counts cannot judge, and a value in a form other than the plain ones read
here (`+4`).
"""

from __future__ import annotations

import math
import re
from typing import Any

# the GPU sbatch parameters read here (the others: OTHERS), as the suite spells a key once checked
# (no dashes before, `-` for `_`)
KEYS = ("gpus", "gpus-per-task", "gpus-per-socket", "gres")
SUFFIX = {"": 1, "k": 1024, "m": 1024 ** 2, "g": 1024 ** 3, "t": 1024 ** 4, "p": 1024 ** 5}
COUNT = re.compile(r"(\d+)([kmgtp]?)", re.I)
COUNT_ONLY = re.compile(r"\d+")  # --mincpus, --cpus-per-gpu, a node's layout: a plain number
FORMS = {"gpus": "[type:]count, e.g. 2 or a100:2", "gpus-per-task": "[type:]count, e.g. 1 or a100:1",
         "gpus-per-socket": "[type:]count, e.g. 1 or a100:1", "gres": "gpu[[:type]:count], e.g. gpu:2 or gpu:a100:2"}


# the others: (what of a node, as `slurm._kinds` names sinfo's fields; what the value is per, if anything)
OTHERS = {"mincpus": ("cpus", None), "cpus-per-gpu": ("cpus", "gpu"), "mem-per-cpu": ("mem", "cpu"),
          "mem-per-gpu": ("mem", "gpu"), "tmp": ("tmp", None), "sockets-per-node": ("sockets", None),
          "cores-per-socket": ("cores", None), "threads-per-core": ("threads", None)}
LAYOUT = ("sockets", "cores", "threads")  # what of a node sinfo's %z gives (S:C:T)
SIZE = re.compile(r"(\d+)(?:([kmgt])b?)?", re.I)  # MB, unless K, M, G or T follows (then an optional B)
MB = {"k": 1 / 1024, "m": 1, "g": 1024, "t": 1024 ** 2}


class Malformed(ValueError):
    """A GPU count sbatch would take that is no number: the job would never start."""


def gpus_per_node(key: str, value: Any, *, nodes: int, tasks_per_node: int) -> int | None:
    """The GPUs sbatch parameter `key`=`value` asks of each node (for `gpus`, a job's total spread
    over `nodes`: at least that many on one; for `gpus-per-socket`, at least one socket's: a node
    with fewer never runs it, whatever `--sockets-per-node` says); None where it asks none or
    cannot be read for sure.
    Raises Malformed for a count that is no number."""
    asked = _asked(key, value)
    return None if asked is None else _per_node(key, sum(n for _, n in asked), nodes, tasks_per_node)


def gpus_of_type_per_node(key: str, value: Any, *, nodes: int, tasks_per_node: int) -> dict[str, int]:
    """The GPUs of each type (as written) sbatch parameter `key`=`value` asks of each node, read as
    `gpus_per_node` reads them all (`gres=gpu:a100:3,gpu:v100:1`: 3 a100 and 1 v100; a type's
    `gpus` spread over `nodes`, at least that many on one); {} where it names no type or cannot be
    read for sure. Raises Malformed for a count that is no number."""
    asked = _asked(key, value) or []
    return {kind: _per_node(key, n, nodes, tasks_per_node) for kind, n in asked if kind}


def _per_node(key: str, n: int, nodes: int, tasks_per_node: int) -> int:
    """What `n` GPUs of sbatch parameter `key` ask of each node (`gpus_per_node`)."""
    if key == "gpus":
        return math.ceil(n / nodes)
    return n * tasks_per_node if key == "gpus-per-task" else n


def _asked(key: str, value: Any) -> list[tuple[str | None, int]] | None:
    """The (type or None, count) entries of a GPU sbatch parameter; None where it asks none or
    cannot be read for sure."""
    if key not in KEYS or isinstance(value, bool) or not isinstance(value, (str, int, float)):
        return None
    text = str(value).strip()
    return _gres(text) if key == "gres" else _typed_counts(key, text)


def _typed_counts(key: str, text: str) -> list[tuple[str | None, int]] | None:
    """The entries of a `[type:]count` list (`--gpus`, `--gpus-per-task`)."""
    entries = [entry.split(":") for entry in text.split(",")]
    if any(len(parts) > 2 for parts in entries) or not _distinct([p[0] if len(p) == 2 else None for p in entries]):
        return None
    return [(parts[0] if len(parts) == 2 else None, _count(key, text, parts[-1])) for parts in entries]


def _gres(text: str) -> list[tuple[str | None, int]] | None:
    """The gpu entries of a `--gres` list (`name[[:type]:count]`, count 1 if left out)."""
    entries = [entry.split(":") for entry in text.split(",") if entry.split(":")[0] == "gpu"]
    if any(len(parts) > 3 for parts in entries):
        return None
    asked: list[tuple[str | None, int]] = []
    for parts in entries:
        if len(parts) == 2 and not COUNT.fullmatch(parts[1]):  # gpu:TYPE, one of them
            parts = [*parts, "1"]
        asked.append((parts[1] if len(parts) == 3 else None, _count("gres", text, parts[-1]) if len(parts) > 1 else 1))
    return asked if _distinct([kind for kind, _ in asked]) else None


def _distinct(types: list[str | None]) -> bool:
    """Whether each entry of a list asks for a type of its own (one untyped entry alone counts)."""
    return len(types) < 2 or (None not in types and len(set(types)) == len(types))


def _count(key: str, text: str, count: str) -> int:
    found = COUNT.fullmatch(count)
    if not found:
        raise Malformed(f"{count!r} in {key}={text} is no GPU count (sbatch takes some such, and the jobs never "
                        f"start; others it refuses naming no key): write {FORMS[key]}")
    return _scaled(found)


def _scaled(found: re.Match[str]) -> int:
    """The number a COUNT match stands for, its suffix applied (`2k`: 2048)."""
    return int(found.group(1)) * SUFFIX[found.group(2).lower()]


def gpus_of_node(gres: str) -> dict[str, float]:
    """What a kind of node has of GPUs, from sinfo's `%G`, which lists its GRES in slurm.conf's
    `Gres=` syntax (`name[:type][:no_consume]:count`, a count may end in K, M, G, T or P; never
    a typed and an untyped entry of one name on a node), each entry followed by the sockets it is
    bound to, if any (`gpu:a100:2(S:0-1),gpu:v100:2`): "gpus", all its GPUs, and "gpu:TYPE" (lower
    case), those of each type. inf where an entry is not read for sure (no_consume, another shape)."""
    has: dict[str, float] = {"gpus": 0}
    for entry in re.sub(r"\([^)]*\)", "", gres).split(","):
        parts = entry.strip().split(":")
        if parts[0] != "gpu":
            continue
        shared = "no_consume" in parts  # no finite number to compare
        parts = [p for p in parts if p != "no_consume"]
        found = COUNT.fullmatch(parts[-1]) if len(parts) in (2, 3) and not shared else None
        n = _scaled(found) if found else math.inf
        has["gpus"] += n
        if len(parts) > 2:
            has[f"gpu:{parts[1].lower()}"] = has.get(f"gpu:{parts[1].lower()}", 0) + n
    return has


def gpu_types(key: str, value: Any) -> list[str]:
    """The GPU types sbatch parameter `key`=`value` names (`gres=gpu:a100:2`, `gpus=a100:2`,
    `gpus-per-socket=a100:1`), each once, in the order given: a node must have each, whatever the
    counts (which `gpus_per_node` reads where it can). A count's form is not judged here."""
    if key not in KEYS or not isinstance(value, str):
        return []
    entries = [entry.split(":") for entry in value.strip().split(",")]
    if key == "gres":  # name[[:type]:count]: gpu:TYPE, gpu:TYPE:COUNT
        found = [parts[1] for parts in entries if parts[0] == "gpu" and len(parts) in (2, 3)
                 and (len(parts) == 3 or not COUNT.fullmatch(parts[1]))]
    else:  # [type:]count
        found = [parts[0] for parts in entries if len(parts) == 2]
    return list(dict.fromkeys(t for t in found if t))


def other_per_node(key: str, value: Any, *, cpus: int, gpus: int) -> tuple[str, int] | None:
    """What sbatch parameter `key`=`value` asks of each node beside GPUs: ("cpus", CPUs), ("mem", MB),
    ("tmp", MB), or a layout: ("sockets", sockets), ("cores", cores a socket), ("threads", threads a
    core); a value per CPU or per GPU is times `cpus` or `gpus`, the CPUs and GPUs the job
    asks a node. None where it asks none of these (mem-per-gpu where no GPU is asked) or cannot be
    read for sure."""
    if key not in OTHERS or not isinstance(value, (str, int)):  # true (a bare flag): 'True' is read as no number
        return None
    what, per = OTHERS[key]
    plain = what == "cpus" or what in LAYOUT
    found = (COUNT_ONLY if plain else SIZE).fullmatch(str(value).strip())
    # where no GPU is asked, slurmctld judges cpus-per-gpu as for one (cpus-per-gpu=9 waited for ever on
    # nodes of 8 CPUs, =8 ran on 1 CPU), and sbatch refuses mem-per-gpu itself
    times = {None: 1, "cpu": cpus, "gpu": gpus or int(what == "cpus")}[per]
    if not found or not times:
        return None
    if plain:
        return what, int(found.group()) * times
    return what, math.ceil(int(found.group(1)) * MB[(found.group(2) or "m").lower()]) * times
