"""The ids this version resolved the configs of stored runs to, kept in `<out>/runs/.ids.json`.

A run planned before plans recorded their id scheme (`id_scheme`) has its config resolved by every
scan of the store (`store.scan`: is it filed under the id this version gives it?), about a
millisecond a run: seconds a command in a store of thousands. Its answer is kept here, keyed by the
stat (inode, size, modification and change times) of the run's config.json and result.json, the
records it is read from, and by the id scheme. Records are replaced whole (a new inode) or, by
hand, edited in place (new times), so a record changed since gives another key and is resolved
again; the cache never writes into a run's directory, so a `plan` or `refile` at the same time can
make an entry stale, never a run. An entry whose records changed since (a run deleted, refiled, or
planned again and so recording its scheme) can never be used again: each rewrite of the cache drops
them. Two processes writing it at once each replace it whole (`files.replace`), so the last one's
stands and the other's entries are resolved again: losing it (or a read-only store) costs only time.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

from suite import files
from suite.config import ID_SCHEME

NAME = ".ids.json"  # in <out>/runs, beside the runs (a file: no run directory)
RECORDS = ("config.json", "result.json")


def key(d: Path) -> list[list[int] | None] | None:
    """What identifies the records of run directory `d` as read now: None when it cannot be looked into."""
    out: list[list[int] | None] = []
    for name in RECORDS:
        try:
            st = os.stat(d / name)
        except FileNotFoundError:
            out.append(None)
            continue
        except OSError:
            return None
        out.append([st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns])
    return out


class IdCache:
    """The cached ids of the runs in `stored`; entries whose records changed since are dropped on save."""

    def __init__(self, out: Path, stored: Iterable[str]) -> None:
        self.runs = Path(out) / "runs"
        self.path = self.runs / NAME
        self.stored = set(stored)
        try:
            kept = json.loads(self.path.read_text())
            entries = kept["runs"] if kept.get("id_scheme") == ID_SCHEME else {}
        except (OSError, ValueError, TypeError, KeyError, AttributeError, RecursionError):
            entries = {}  # none yet, or not one this version reads: resolved again and written anew
        self.entries = {rid: e for rid, e in entries.items() if rid in self.stored} \
            if isinstance(entries, dict) else {}
        self.changed = len(self.entries) != (len(entries) if isinstance(entries, dict) else 0)
        self.checked: set[str] = set()  # the entries found current by this scan (`get`, `put`): not stat'ed again
        files.sweep(self.runs)  # a cache's temporary its writer was killed writing (the store's runs are folders)

    def get(self, rid: str, now: list | None) -> str | None:
        """The id cached for `rid` when its records are as they were then (`now`: their `key`); an
        entry for other records is of no use any more, and goes at the next save."""
        entry = self.entries.get(rid)
        if now is not None and isinstance(entry, list) and len(entry) == 2 and entry[0] == now \
                and isinstance(entry[1], str):
            self.checked.add(rid)
            return entry[1]
        if entry is not None:
            self.changed = True
        return None

    def put(self, rid: str, before: list | None, run_id: str, after: list | None) -> None:
        """Keep `run_id` for `rid` if its records did not change while it was resolved (`before`, `after`)."""
        if before is not None and before == after:
            self.entries[rid] = [before, run_id]
            self.checked.add(rid)
            self.changed = True

    def save(self) -> None:
        """Write the cache if it changed, without the entries whose records are not as they were
        cached (a stat of each run this scan did not find current: the cost of a rewrite, not of a
        scan); a store this user may not write keeps none."""
        if not self.changed:
            return
        kept = {rid: e for rid, e in self.entries.items() if rid in self.checked or (
                isinstance(e, list) and len(e) == 2 and e[0] is not None and e[0] == key(self.runs / rid))}
        try:
            with files.replace(self.path) as f:
                json.dump({"id_scheme": ID_SCHEME, "runs": kept}, f, separators=(",", ":"))
        except (OSError, files.Gone):  # a read-only store, or one deleted meanwhile
            pass
