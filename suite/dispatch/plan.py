"""Deciding what a `suite run` must start: the states of a spec's runs in the store."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from suite import store
from suite.ablations.expand import RunSpec


@dataclass(frozen=True)
class Plan:
    runs: list[RunSpec]
    states: dict[str, store.RunState]
    to_run: list[RunSpec]
    remeasure: dict[str, list[str]]  # run_id -> how its done measurement differs (to_run measures it again)
    executing: frozenset[str] = frozenset()  # runs another process holds the lock of, whatever their state says
    # runs to start whose lock this user cannot open (another user's): whether they are executing is
    # unknown, so none is started; `suite run` refuses, naming the lock, and --dry-run lists them
    unknown: dict[str, store.LockUnopenable] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        return store.count_states(s.state for s in self.states.values())


def make_plan(runs: list[RunSpec], out: Path, *, retry_failed: bool = False, force: bool = False,
              busy: Collection[str] = (), elsewhere: Mapping[str, str] = store.NOT_MOVED) -> Plan:
    """Missing and interrupted runs always run; failed ones with `retry_failed`; everything with `force`.

    A done run measured with other `measure.*` settings runs too: its model is measured again and
    its training kept (`suite.execute`).

    Running and pending runs are left alone (another process or a SLURM job owns them), and so are
    the runs in `busy` whatever their directory says (e.g. a SLURM job requeued after its process died)
    and the runs a process is executing (it holds their lock) whatever their status says.

    `elsewhere`: run id -> the id an older version stored it under, for the runs `refile` could not
    move yet (their job may still be writing there): their state, and whether a process executes
    them, is read there, so a run whose job is queued under its old id is not started again.
    """
    def where(rid: str) -> Path:
        return store.run_dir(out, elsewhere.get(rid, rid))

    states = {r.run_id: store.state_of(where(r.run_id)) for r in runs}
    wanted = set(store.TO_RUN) | ({"failed", "cancelled"} if retry_failed else set())
    if force:
        wanted |= {"done", "failed", "cancelled"}
    remeasure = {}
    if not force:
        for r in runs:
            state = states[r.run_id]
            if state.state == "done" and state.result is not None and r.run_id not in busy:
                if differences := store.measured_otherwise(r, state.result):
                    remeasure[r.run_id] = differences
    candidates = [r for r in runs if (states[r.run_id].state in wanted or r.run_id in remeasure) and r.run_id not in busy]
    executing, unknown = set(), {}
    for r in candidates:
        try:
            if store.executing(where(r.run_id)):
                executing.add(r.run_id)
        except store.LockUnopenable as err:
            unknown[r.run_id] = err
    to_run = [r for r in candidates if r.run_id not in executing and r.run_id not in unknown]
    return Plan(runs, states, to_run, remeasure, frozenset(executing), unknown)


def start_afresh(runs: list[RunSpec], out: Path, archived: dict[Path, Path] | None = None) -> None:
    """For --force: archive what the runs to start left behind (results, checkpoints, logs), noting
    each run directory's archive in `archived` as it goes (`store.unarchive` undoes it)."""
    for run in runs:
        start_afresh_dir(store.run_dir(out, run.run_id), archived)


def start_afresh_dir(d: Path, archived: dict[Path, Path] | None = None) -> None:
    """`start_afresh` for one run directory."""
    if d.exists() and any(p.name not in ("config.json", "archive", ".lock") for p in d.iterdir()):
        target = store.archive(d)
        if archived is not None:
            archived[d] = target
