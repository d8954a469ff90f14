"""Kernel settings a kubelet changes on start, recorded before and put back after.

kubelet sets a few machine-wide sysctls when it starts (it expects to own the machine). The local
node writes their values to a record file before kubelet runs and restores them when it stops. A
record that already exists was left by a node that died before it could restore: its values are the
machine's original ones, so it is kept, not overwritten, and the next orderly stop restores them.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

# What kubelet 1.3x sets when protectKernelDefaults is false (pkg/kubelet/cm: setupKernelTunables); it
# writes only those that differ from what it wants, typically the first three.
KUBELET_SYSCTLS = (
    "vm.overcommit_memory",
    "kernel.panic",
    "kernel.panic_on_oops",
    "vm.panic_on_oom",
    "kernel.keys.root_maxkeys",
    "kernel.keys.root_maxbytes",
)
PROC_SYS = Path("/proc/sys")


@dataclass(frozen=True)
class Restored:
    name: str
    changed_to: str  # what kubelet had left
    restored: str  # the recorded original


@dataclass(frozen=True)
class SysctlRecord:
    """Original sysctl values, kept in `path` between a node's start and its stop."""

    path: Path
    root: Path = PROC_SYS  # tests point this at a directory of plain files

    def _file(self, name: str) -> Path:
        return self.root / name.replace(".", "/")

    def read(self, name: str) -> str:
        return self._file(name).read_text().strip()

    def recorded(self) -> dict[str, str]:
        try:
            values = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        if not isinstance(values, dict):
            raise ValueError(f"{self.path} is not a sysctl record")
        return {str(name): str(value) for name, value in values.items()}

    def save(self, names: Iterable[str] = KUBELET_SYSCTLS) -> dict[str, str]:
        """Record the current value of each name not recorded yet; returns the whole record."""
        values = self.recorded()
        missing = [name for name in names if name not in values]
        if not missing and self.path.exists():
            return values
        values.update({name: self.read(name) for name in missing})
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_suffix(".partial")
        partial.write_text(json.dumps(values, indent=1, sort_keys=True) + "\n")
        partial.replace(self.path)
        return values

    def restore(self) -> list[Restored]:
        """Write back every recorded value that differs now, then drop the record; returns what changed."""
        changed = []
        for name, original in self.recorded().items():
            current = self.read(name)
            if current != original:
                self._file(name).write_text(original + "\n")
                changed.append(Restored(name, current, original))
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        return changed
