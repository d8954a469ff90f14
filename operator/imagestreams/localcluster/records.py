"""What a local cluster started, written down so that its leftovers can be found and stopped.

Normally nothing is left over: children die with their starter (processes.spawn). This is
the second line, for the cases the kernel does not cover (a process that re-parents itself,
a starter that disabled the parent-death signal, an earlier version of this code). Each
cluster's work directory holds `processes.json`: the owner (the process that started the
cluster) and every process started for it, each by pid, start time and boot id. An index
directory links to every work directory in use, so that a new cluster, or
`imagestreams-localcluster down`, finds the clusters whose owner has died and stops exactly
the processes recorded there whose identity still matches: never a process that merely
reuses a recorded pid.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from imagestreams.localcluster.processes import STOP_GRACE_SECONDS, ProcessIdentity, stop_identity, this_process

RECORD_FILE = "processes.json"
INDEX_ENV = "IMAGESTREAMS_RUN_DIR"


def index_dir() -> Path:
    """Where links to the work directories of running clusters live (one per user)."""
    configured = os.environ.get(INDEX_ENV)
    if configured:
        return Path(configured)
    return Path(tempfile.gettempdir()) / f"imagestreams-clusters-{os.getuid()}"


@dataclass
class RecordedProcess:
    name: str
    identity: ProcessIdentity


@dataclass
class ProcessRecord:
    """The `processes.json` of one cluster's work directory, kept by the cluster's owner."""

    workdir: Path
    owner: ProcessIdentity
    temporary_workdir: bool = False
    processes: list[RecordedProcess] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def path(self) -> Path:
        return self.workdir / RECORD_FILE

    # --- the owner's side ---------------------------------------------------------------

    @classmethod
    def create(cls, workdir: Path, *, temporary_workdir: bool, index: Path | None = None) -> ProcessRecord:
        """Start the record of a new cluster in `workdir` and link it from the index."""
        record = cls(workdir, this_process(), temporary_workdir)
        record._write()
        _registry[workdir.resolve()] = record
        index = index or index_dir()
        index.mkdir(mode=0o700, parents=True, exist_ok=True)
        link = index / _link_name(workdir)
        with contextlib.suppress(FileNotFoundError):
            link.unlink()
        link.symlink_to(workdir.resolve())
        return record

    def add(self, name: str, identity: ProcessIdentity) -> None:
        with self._lock:
            self.processes.append(RecordedProcess(name, identity))
            self._write()

    def close(self, index: Path | None = None) -> None:
        """The cluster has stopped: forget it (the record file and the index link go)."""
        with self._lock:
            self.processes.clear()
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
        _registry.pop(self.workdir.resolve(), None)
        with contextlib.suppress(FileNotFoundError):
            ((index or index_dir()) / _link_name(self.workdir)).unlink()

    @classmethod
    def enclosing(cls, path: Path) -> ProcessRecord | None:
        """This process's record of the cluster whose work directory holds `path` (a kubeconfig, a log), if any."""
        resolved = path.resolve()
        for candidate in (resolved, *resolved.parents):
            record = _registry.get(candidate)
            if record is not None:
                return record
        return None

    def _write(self) -> None:
        body = {
            "owner": self.owner.to_json(),
            "temporary_workdir": self.temporary_workdir,
            "processes": [{"name": p.name, **p.identity.to_json()} for p in self.processes],
        }
        partial = self.path.with_suffix(".json.partial")
        partial.write_text(json.dumps(body, indent=1) + "\n")
        partial.replace(self.path)

    # --- everyone else's side -----------------------------------------------------------

    @classmethod
    def read(cls, workdir: Path) -> ProcessRecord | None:
        try:
            body: dict[str, Any] = json.loads((workdir / RECORD_FILE).read_text())
            return cls(
                workdir,
                ProcessIdentity.from_json(body["owner"]),
                bool(body.get("temporary_workdir", False)),
                [RecordedProcess(str(p["name"]), ProcessIdentity.from_json(p)) for p in body.get("processes", [])],
            )
        except (FileNotFoundError, NotADirectoryError):
            return None
        except (ValueError, KeyError, TypeError) as error:
            raise ValueError(f"{workdir / RECORD_FILE} is not a process record: {error}") from error

    def running(self) -> list[RecordedProcess]:
        """Recorded processes that are still the very processes recorded."""
        return [p for p in self.processes if p.identity.alive()]


_registry: dict[Path, ProcessRecord] = {}


def _link_name(workdir: Path) -> str:
    return hashlib.sha256(str(workdir.resolve()).encode()).hexdigest()[:16]


# Clean-ups for what a part of the cluster starts that outlives its starter by design and so is not in the
# record (node.py: containerd's shims, their containers, their mounts). reap() calls each with the work
# directory of a cluster whose owner is gone, after the recorded processes stopped and before the directory
# is removed; each returns the names of what it stopped.
LeftoverCleaner = Callable[[Path], list[str]]
_leftover_cleaners: list[LeftoverCleaner] = []


def add_leftover_cleaner(cleaner: LeftoverCleaner) -> None:
    if cleaner not in _leftover_cleaners:
        _leftover_cleaners.append(cleaner)


@dataclass
class Reaped:
    """What stopping one cluster's leftovers did."""

    workdir: Path
    owner_was_running: bool
    stopped: list[str]
    seconds: float
    removed_workdir: bool


def reap(
    record: ProcessRecord, *, stop_owner: bool = False, grace: float = STOP_GRACE_SECONDS, index: Path | None = None
) -> Reaped:
    """Stop the recorded processes of one cluster, newest first (SIGTERM, then SIGKILL after `grace`).

    A live owner is left alone unless `stop_owner`: then it is sent SIGTERM and given time to run its
    own orderly clean-up first, and whatever it leaves behind is stopped here.
    """
    started = time.monotonic()
    owner_running = record.owner.alive()
    if owner_running and stop_owner:
        stop_identity(record.owner, grace=60.0)
    stopped = [p.name for p in reversed(record.processes) if stop_identity(p.identity, grace)]
    removed = False
    if not record.owner.alive():  # the cluster is over: its record, link and temporary directory go too
        for cleaner in _leftover_cleaners:
            stopped.extend(cleaner(record.workdir))
        if record.temporary_workdir and record.workdir.exists():
            shutil.rmtree(record.workdir, ignore_errors=True)
            removed = True
        else:
            with contextlib.suppress(FileNotFoundError):
                record.path.unlink()
        with contextlib.suppress(FileNotFoundError):
            ((index or index_dir()) / _link_name(record.workdir)).unlink()
    return Reaped(record.workdir, owner_running, stopped, time.monotonic() - started, removed)


def recorded_clusters(index: Path | None = None) -> list[Path]:
    """Work directories the index links to; links to directories that are gone are removed."""
    index = index or index_dir()
    found = []
    for link in sorted(index.glob("*")) if index.is_dir() else []:
        target = Path(os.readlink(link)) if link.is_symlink() else None
        if target is None or not (target / RECORD_FILE).exists():
            with contextlib.suppress(FileNotFoundError):
                link.unlink()
            continue
        found.append(target)
    return found


def reap_orphans(index: Path | None = None, grace: float = STOP_GRACE_SECONDS) -> list[Reaped]:
    """Stop the leftovers of every indexed cluster whose owner has died; clusters with a live owner are kept."""
    index = index or index_dir()
    results = []
    for workdir in recorded_clusters(index):
        try:
            record = ProcessRecord.read(workdir)
        except ValueError:
            continue  # not ours to judge: leave an unreadable record alone
        if record is None or record.owner.alive():
            continue
        results.append(reap(record, grace=grace, index=index))
    return results
