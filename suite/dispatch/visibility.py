"""Whose SLURM jobs this user is shown, who submitted a run's job, and on which cluster.

Where slurm.conf's `PrivateData` includes `jobs`, squeue and sacct answer for another user's job
as for one that does not exist. A store readable by a teammate (their runs, submitted by them)
then looked lost to the teammate's `suite status` after LOST_AFTER_S, and was recorded failed
where the folder was writable. So each submission records its submitter (`slurm_user` in
status.json), and a job of another user that SLURM does not show where PrivateData hides jobs is
not judged (`slurm.refresh`).

Likewise a store on a file system two clusters share, read from the other cluster's login node:
there the job ids mean nothing, or another job, and a waiting job's run was failed as lost, or
recorded cancelled by the end of the job that has its id there, and `suite cancel` scancelled that
job. So each submission records its cluster (`slurm_cluster`, slurm.conf's ClusterName), and a job
of another cluster is neither asked about nor cancelled there.
"""

from __future__ import annotations

import os
import pwd
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def user_name(uid: int | None = None) -> str:
    """The name squeue shows for `uid` (this process's by default): its passwd entry, else the
    number (a container's user may have none)."""
    uid = os.getuid() if uid is None else uid
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def submitter(d: Path, status: Mapping[str, Any]) -> str:
    """Who submitted the job of the run in `d`: `slurm_user`, as its submission recorded it. A
    record from before the suite recorded it: the owner of its status.json, as while the job is
    queued or running only the submitter and its job write that file (each write replaces it);
    unreadable, this user (judged as before the suite recorded it)."""
    recorded = status.get("slurm_user")
    if recorded:
        return str(recorded)
    try:
        return user_name((d / "status.json").stat().st_uid)
    except OSError:
        return user_name()


def hides_jobs(config: str) -> bool:
    """Whether `scontrol show config` (`config`) says PrivateData hides other users' jobs
    (`PrivateData = jobs,usage`; `none` where nothing is hidden)."""
    found = re.search(r"^PrivateData\s*=\s*(\S*)", config, re.M)
    return bool(found) and "jobs" in found.group(1).split(",")


def hidden(submitted_by: str, private_jobs: bool, me: str) -> bool:
    """Whether SLURM's silence about a job `submitted_by` says nothing to user `me`: another
    user's job where PrivateData hides jobs (`private_jobs`) may be queued, running or ended."""
    return private_jobs and submitted_by != me


def cluster_name(config: str) -> str | None:
    """The ClusterName `scontrol show config` (`config`) gives (None: it gives none)."""
    found = re.search(r"^ClusterName\s*=\s*(\S+)", config, re.M)
    return found.group(1) if found else None


def submitted_on(status: Mapping[str, Any]) -> str | None:
    """The cluster a run's job was submitted to, as its submission recorded it (None: a record from
    before the suite recorded it, judged here as before)."""
    recorded = status.get("slurm_cluster")
    return str(recorded) if recorded else None
