"""A cluster's process record finds the leftovers of a dead owner, and stops exactly those.

Real processes throughout; the "leftovers" are started here in sessions of their own, as a
cluster's servers would be after their owner died without the kernel's help.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from imagestreams.localcluster.__main__ import main
from imagestreams.localcluster.processes import ProcessIdentity
from imagestreams.localcluster.records import RECORD_FILE, ProcessRecord, reap_orphans, recorded_clusters

SLEEP = [sys.executable, "-c", "import time; time.sleep(60)"]


@pytest.fixture
def index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "index"
    monkeypatch.setenv("IMAGESTREAMS_RUN_DIR", str(directory))
    return directory


@pytest.fixture
def sleepers() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait()


def _sleeper(started: list[subprocess.Popen[bytes]]) -> ProcessIdentity:
    process = subprocess.Popen(SLEEP, start_new_session=True)
    started.append(process)
    identity = ProcessIdentity.of(process.pid)
    assert identity is not None
    return identity


def _dead_identity() -> ProcessIdentity:
    process = subprocess.Popen(SLEEP)
    identity = ProcessIdentity.of(process.pid)
    assert identity is not None
    process.kill()
    process.wait()
    return identity


def _leftover_cluster(
    workdir: Path, index: Path, owner: ProcessIdentity, processes: dict[str, ProcessIdentity], *, temporary: bool
) -> None:
    """What a cluster leaves behind when its owner dies: the record, and the index link to it."""
    workdir.mkdir(parents=True)
    body = {
        "owner": owner.to_json(),
        "temporary_workdir": temporary,
        "processes": [{"name": name, **identity.to_json()} for name, identity in processes.items()],
    }
    (workdir / RECORD_FILE).write_text(json.dumps(body))
    index.mkdir(exist_ok=True)
    (index / workdir.name).symlink_to(workdir)


def _gone(identity: ProcessIdentity, timeout: float = 5) -> bool:
    deadline = time.monotonic() + timeout
    while identity.alive():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_leftovers_of_a_dead_owner_are_stopped_and_a_reused_pid_is_left_alone(
    tmp_path: Path, index: Path, sleepers: list[subprocess.Popen[bytes]]
) -> None:
    etcd, apiserver, stranger = _sleeper(sleepers), _sleeper(sleepers), _sleeper(sleepers)
    # The stranger has a pid the record names, but started at another time: a reused pid.
    reused = ProcessIdentity(stranger.pid, stranger.start_ticks - 1, stranger.boot_id)
    workdir = tmp_path / "dead-cluster"
    _leftover_cluster(
        workdir, index, _dead_identity(), {"etcd": etcd, "kube-apiserver": apiserver, "old": reused}, temporary=True
    )

    reaped = reap_orphans(index, grace=2)

    assert [r.stopped for r in reaped] == [["kube-apiserver", "etcd"]]  # newest first
    assert _gone(etcd) and _gone(apiserver)
    assert stranger.alive()
    assert reaped[0].removed_workdir and not workdir.exists()
    assert recorded_clusters(index) == []


def test_a_cluster_whose_owner_runs_is_not_touched(
    tmp_path: Path, index: Path, sleepers: list[subprocess.Popen[bytes]]
) -> None:
    owner, server = _sleeper(sleepers), _sleeper(sleepers)
    workdir = tmp_path / "live-cluster"
    _leftover_cluster(workdir, index, owner, {"etcd": server}, temporary=True)

    assert reap_orphans(index, grace=2) == []
    assert server.alive() and owner.alive()
    assert (workdir / RECORD_FILE).exists()
    assert recorded_clusters(index) == [workdir]


def test_a_given_work_directory_is_kept_and_only_its_record_goes(
    tmp_path: Path, index: Path, sleepers: list[subprocess.Popen[bytes]]
) -> None:
    server = _sleeper(sleepers)
    workdir = tmp_path / "kept"
    _leftover_cluster(workdir, index, _dead_identity(), {"registry": server}, temporary=False)
    (workdir / "logs").mkdir()

    reaped = reap_orphans(index, grace=2)

    assert [r.stopped for r in reaped] == [["registry"]]
    assert _gone(server)
    assert (workdir / "logs").is_dir() and not (workdir / RECORD_FILE).exists()


def test_the_owner_records_its_processes_and_forgets_them_on_close(tmp_path: Path, index: Path) -> None:
    workdir = tmp_path / "mine"
    workdir.mkdir()
    record = ProcessRecord.create(workdir, temporary_workdir=False)
    assert ProcessRecord.enclosing(workdir / "kubeconfigs" / "admin.yaml") is record
    identity = _dead_identity()
    record.add("etcd", identity)

    written = ProcessRecord.read(workdir)
    assert written is not None
    assert written.owner.alive() and [(p.name, p.identity) for p in written.processes] == [("etcd", identity)]
    assert recorded_clusters(index) == [workdir.resolve()]

    record.close()
    assert ProcessRecord.read(workdir) is None
    assert recorded_clusters(index) == []
    assert ProcessRecord.enclosing(workdir) is None


def test_down_stops_a_dead_owners_leftovers(
    tmp_path: Path, index: Path, sleepers: list[subprocess.Popen[bytes]], capsys: pytest.CaptureFixture[str]
) -> None:
    server = _sleeper(sleepers)
    workdir = tmp_path / "dead"
    _leftover_cluster(workdir, index, _dead_identity(), {"kube-controller-manager": server}, temporary=False)

    assert main(["down"]) == 0

    assert _gone(server)
    out = capsys.readouterr().out
    assert f"cluster {workdir} (its owner had died): stopped kube-controller-manager" in out
    assert main(["down"]) == 0
    assert "no local clusters recorded" in capsys.readouterr().out


def test_down_asks_a_live_owner_to_stop_first(
    tmp_path: Path, index: Path, sleepers: list[subprocess.Popen[bytes]], capsys: pytest.CaptureFixture[str]
) -> None:
    owner, server = _sleeper(sleepers), _sleeper(sleepers)
    workdir = tmp_path / "live"
    _leftover_cluster(workdir, index, owner, {"etcd": server}, temporary=False)

    assert main(["down", f"--workdir={workdir}"]) == 0

    assert _gone(owner) and _gone(server)
    assert "its owner was still running and was asked to stop" in capsys.readouterr().out


def test_down_on_a_directory_without_a_cluster_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["down", f"--workdir={tmp_path}"]) == 1
    assert "holds no running cluster" in capsys.readouterr().err
