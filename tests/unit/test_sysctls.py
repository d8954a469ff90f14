"""Kernel settings kubelet changes are recorded before it starts and put back after, from a plain-file tree."""

from __future__ import annotations

from pathlib import Path

import pytest

from imagestreams.localcluster.sysctls import KUBELET_SYSCTLS, Restored, SysctlRecord


@pytest.fixture
def proc_sys(tmp_path: Path) -> Path:
    """A stand-in for /proc/sys holding kubelet's settings with a machine's values."""
    root = tmp_path / "sys"
    for name, value in zip(KUBELET_SYSCTLS, ("0", "1", "0", "0", "200", "20000"), strict=True):
        path = root / name.replace(".", "/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"{value}\n")
    return root


def test_what_kubelet_changes_is_put_back(tmp_path: Path, proc_sys: Path) -> None:
    record = SysctlRecord(tmp_path / "record.json", root=proc_sys)
    originals = record.save()
    assert originals["vm.overcommit_memory"] == "0"
    # kubelet's start: three settings change, the others already have its values
    (proc_sys / "vm/overcommit_memory").write_text("1\n")
    (proc_sys / "kernel/panic").write_text("10\n")
    (proc_sys / "kernel/panic_on_oops").write_text("1\n")

    restored = record.restore()

    assert set(restored) == {
        Restored("vm.overcommit_memory", "1", "0"),
        Restored("kernel.panic", "10", "1"),
        Restored("kernel.panic_on_oops", "1", "0"),
    }
    assert {name: record.read(name) for name in KUBELET_SYSCTLS} == originals
    assert not record.path.exists(), "an orderly stop drops the record"


def test_a_record_left_by_a_dead_node_keeps_the_true_originals(tmp_path: Path, proc_sys: Path) -> None:
    record = SysctlRecord(tmp_path / "record.json", root=proc_sys)
    record.save()
    (proc_sys / "kernel/panic").write_text("10\n")  # kubelet ran, then its owner was killed: nothing restored
    again = record.save()  # the next node starts
    assert again["kernel.panic"] == "1", "the values kubelet left must not overwrite the recorded originals"
    assert [r.name for r in record.restore()] == ["kernel.panic"]
    assert record.read("kernel.panic") == "1"


def test_nothing_to_restore_without_a_record(tmp_path: Path, proc_sys: Path) -> None:
    record = SysctlRecord(tmp_path / "record.json", root=proc_sys)
    assert record.restore() == []
    assert record.recorded() == {}


def test_unchanged_settings_are_not_written(tmp_path: Path, proc_sys: Path) -> None:
    record = SysctlRecord(tmp_path / "record.json", root=proc_sys)
    record.save(["kernel.panic"])
    panic = proc_sys / "kernel/panic"
    panic.chmod(0o444)  # a write would fail (except as root, where the mtime shows it)
    before = panic.stat().st_mtime_ns
    assert record.restore() == []
    assert panic.stat().st_mtime_ns == before


def test_a_record_that_is_not_a_mapping_is_an_error(tmp_path: Path, proc_sys: Path) -> None:
    path = tmp_path / "record.json"
    path.write_text("[1, 2]")
    with pytest.raises(ValueError, match="not a sysctl record"):
        SysctlRecord(path, root=proc_sys).recorded()
