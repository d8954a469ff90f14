"""A worker node for the local cluster: containerd, kubelet and kube-scheduler on loopback.

Pods really run: containerd (built from the Go module proxy) with Debian's runc and CNI plugins,
pulling from the cluster's registries. Everything a node writes stays under `<workdir>/node`, except
what is machine-wide by nature, which is put back on stop:

- kubelet's sysctls (sysctls.py), recorded before it starts;
- the pod bridge `imagestreams0` (it has no address, gateway, masquerading or routes, so pods reach
  nothing outside themselves and nothing leaves the machine);
- kubelet's `kubepods` cgroups (removed if there were none before) and its /var/log/containers links;
- the runtime's and kubelet's sockets and kubelet's root directory, under MACHINE_DIR (unix socket paths
  must be short);
- what kubelet and the CNI library create at fixed paths (/var/lib/kubelet/device-plugins,
  /var/log/containers, /var/lib/cni/results): removed again if it was not there before.

Those machine-wide parts allow one node per machine at a time: a lock in MACHINE_DIR says whose it is.
containerd's shims detach from it on purpose, so they and their containers are not children of this
process: an orderly stop kills the runtime's tasks, and records.reap finds what a dead owner left
(shims by their working directory, a bundle under `<workdir>/node`; containers by runc's state, pid and
start time) through the cleaner registered here.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import json
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from imagestreams.localcluster.binaries import NodeBinaries, read_versions
from imagestreams.localcluster.controlplane import HOST_NETWORK_RUNTIME_CLASS, AdminHTTP
from imagestreams.localcluster.images import Image, PushClient, build_image
from imagestreams.localcluster.processes import (
    ManagedProcess,
    ProcessFailed,
    ProcessIdentity,
    boot_id,
    free_port,
    stop_identity,
)
from imagestreams.localcluster.records import ProcessRecord, add_leftover_cleaner
from imagestreams.localcluster.registry import Registry, RegistryKind
from imagestreams.localcluster.sysctls import SysctlRecord

# Short on purpose: containerd refuses a shim socket directory longer than 42 characters.
MACHINE_DIR = Path("/run/imagestreams-node")
BRIDGE = "imagestreams0"
POD_SUBNET = "10.88.0.0/16"
CNI_NETWORK = "imagestreams-local"
# The CNI library caches each attachment here (not configurable through containerd); a stopped sandbox
# removes its entry, a killed one leaves it.
CNI_RESULTS = Path("/var/lib/cni/results")
CRI_NAMESPACE = "k8s.io"
PAUSE_REPOSITORY = "imagestreams/pause"
SHIM = "containerd-shim-runc-v2"
CONTAINERD_READY_TIMEOUT = 20.0
NODE_READY_TIMEOUT = 60.0
DRAIN_TIMEOUT = 15.0
NOT_READY_TAINT = "node.kubernetes.io/not-ready"
# A dedicated node (the test suite's) runs only pods that ask for it: other tests' pods stay Pending, untouched
# by the scheduler and the kubelet, as they are without a node.
DEDICATED_SCHEDULER = "imagestreams-node"
DEDICATED_TAINT = {"key": "imagestreams.dev/node", "value": "dedicated", "effect": "NoSchedule"}
CGROUP_ROOT = Path("/sys/fs/cgroup")
# containerd's runtime (containerd_config's default_runtime_name): the handler of the RuntimeClass that Pod Security
# admission exempts (controlplane.HOST_NETWORK_RUNTIME_CLASS), so pods of that class run as any other pod here.
RUNTIME_HANDLER = "runc"
RUNTIME_CLASSES = "/apis/node.k8s.io/v1/runtimeclasses"
# kubelet links every container's log here, whatever its configuration says, creating the directory if needed.
LEGACY_LOG_LINKS = Path("/var/log/containers")
# Machine paths the node creates whatever its configuration says: kubelet's log links and device-plugin
# socket, the CNI library's result cache. Those that did not exist before the node are listed in this file
# under MACHINE_DIR, and removed with the machine-wide state once they hold only directories and sockets.
MACHINE_PATHS = (LEGACY_LOG_LINKS, Path("/var/lib/kubelet"), Path("/var/lib/cni"))
CREATED_RECORD = "created.json"
_MNT_DETACH = 2


# --- images ------------------------------------------------------------------------------


def program_image(pause: Path, files: Mapping[str, bytes] | None = None, args: Sequence[str] = ()) -> Image:
    """An image whose program is the static pause binary: it prints each file named in `args` to stdout,
    then runs until SIGTERM. With no `args` it is the node's sandbox (pause) image."""
    return build_image(
        {"pause": pause.read_bytes(), **(files or {})},
        cmd=("/pause", *args),
        modes={"pause": 0o755},
        compresslevel=1,  # level 9 takes seconds for the 1.6 MB program
    )


def message_image(pause: Path, message: str) -> Image:
    """An image whose container logs `message` and then runs until stopped; each message gives another digest.
    End it with a newline: the runtime logs whole lines, and this program keeps running after printing."""
    return program_image(pause, {"message": message.encode()}, ("/message",))


# --- configuration files ------------------------------------------------------------------


@dataclass(frozen=True)
class NodePaths:
    root: Path  # <workdir>/node

    @property
    def containerd_root(self) -> Path:
        return self.root / "containerd" / "root"

    @property
    def containerd_state(self) -> Path:
        return self.root / "containerd" / "state"

    @property
    def socket(self) -> Path:
        # Not under root: a unix socket path (with ".ttrpc" added) must stay under 104 characters.
        return MACHINE_DIR / "containerd.sock"

    @property
    def containerd_config(self) -> Path:
        return self.root / "containerd" / "config.toml"

    @property
    def runc_root(self) -> Path:
        return self.root / "runc"

    @property
    def registry_hosts(self) -> Path:
        return self.root / "certs.d"

    @property
    def cni_conf(self) -> Path:
        return self.root / "cni" / "net.d"

    @property
    def cni_ipam(self) -> Path:
        return self.root / "cni" / "ipam"

    @property
    def kubelet_root(self) -> Path:
        # Not under root either: kubelet listens on unix sockets below its root directory.
        return MACHINE_DIR / "kubelet"

    @property
    def kubelet_config(self) -> Path:
        return self.root / "kubelet.yaml"

    @property
    def pod_logs(self) -> Path:
        return self.root / "pod-logs"


def _toml(value: str | bool | int | Sequence[str]) -> str:
    """A TOML value: JSON's strings, booleans, integers and arrays of strings are valid TOML too."""
    return json.dumps(value if isinstance(value, (str, bool, int)) else list(value))


def containerd_config(paths: NodePaths, binaries: NodeBinaries, sandbox_image: str) -> str:
    """containerd's config (version 3, read by containerd 2.x): all state under the node directory, CRI on."""
    sections: dict[str, dict[str, str | bool | int | Sequence[str]]] = {
        "grpc": {"address": str(paths.socket)},
        "ttrpc": {"address": f"{paths.socket}.ttrpc"},
        "debug": {"level": "info"},
        "metrics": {"address": ""},
        'plugins."io.containerd.cri.v1.images"': {"snapshotter": "overlayfs"},
        'plugins."io.containerd.cri.v1.images".pinned_images': {"sandbox": sandbox_image},
        'plugins."io.containerd.cri.v1.images".registry': {"config_path": str(paths.registry_hosts)},
        'plugins."io.containerd.cri.v1.runtime"': {
            # The machine's root lacks CAP_SYS_RESOURCE: runc may not lower oom_score_adj below containerd's.
            "restrict_oom_score_adj": True,
            "netns_mounts_under_state_dir": True,
            "cdi_spec_dirs": [],
        },
        'plugins."io.containerd.cri.v1.runtime".containerd': {"default_runtime_name": "runc"},
        'plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc': {"runtime_type": "io.containerd.runc.v2"},
        'plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc.options': {
            "BinaryName": str(binaries.runc),
            "Root": str(paths.runc_root),
            "SystemdCgroup": False,
        },
        'plugins."io.containerd.cri.v1.runtime".cni': {
            "bin_dirs": [str(binaries.cni_bin_dir)],
            "conf_dir": str(paths.cni_conf),
            "max_conf_num": 1,
        },
        'plugins."io.containerd.grpc.v1.cri"': {"stream_server_address": "127.0.0.1", "stream_server_port": "0"},
        'plugins."io.containerd.transfer.v1.local"': {"config_path": str(paths.registry_hosts)},
        'plugins."io.containerd.shim.v1.manager"': {"socket_dir": str(MACHINE_DIR / "s")},
    }
    lines = [
        "version = 3",
        f"root = {_toml(str(paths.containerd_root))}",
        f"state = {_toml(str(paths.containerd_state))}",
        "imports = []",
        # /opt/containerd, NRI's socket in /var/run/nri, and a snapshotter and differ this machine cannot use.
        "disabled_plugins = "
        + _toml(
            [
                "io.containerd.internal.v1.opt",
                "io.containerd.nri.v1.nri",
                "io.containerd.snapshotter.v1.blockfile",
                "io.containerd.snapshotter.v1.erofs",
                "io.containerd.differ.v1.erofs",
            ]
        ),
    ]
    for name, values in sections.items():
        lines.append(f"\n[{name}]")
        lines.extend(f"  {key} = {_toml(value)}" for key, value in values.items())
    return "\n".join(lines) + "\n"


def cni_conflist(paths: NodePaths) -> dict[str, Any]:
    """A bridge with no host address, no gateway, no masquerading and no routes: pods get an address (so the
    runtime reports its network ready) but can reach nothing beyond themselves."""
    return {
        "cniVersion": "1.0.0",
        "name": CNI_NETWORK,
        "plugins": [
            {
                "type": "bridge",
                "bridge": BRIDGE,
                "isGateway": False,
                "isDefaultGateway": False,
                "ipMasq": False,
                "hairpinMode": False,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": POD_SUBNET}]],
                    "routes": [],
                    "dataDir": str(paths.cni_ipam),
                },
            }
        ],
    }


def registry_hosts_toml(registry: Registry) -> str:
    """containerd's hosts.toml for one local registry: plain HTTP, or HTTPS trusting the cluster CA."""
    lines = [
        f"server = {_toml(registry.url)}",
        "",
        f"[host.{_toml(registry.url)}]",
        '  capabilities = ["pull", "resolve"]',
    ]
    if registry.ca_file is not None:
        lines.append(f"  ca = {_toml(str(registry.ca_file))}")
    return "\n".join(lines) + "\n"


def dedicated_pod_spec() -> dict[str, Any]:
    """What a pod spec needs to run on a dedicated node: its scheduler, and a toleration of its taint."""
    return {"schedulerName": DEDICATED_SCHEDULER, "tolerations": [{**DEDICATED_TAINT, "operator": "Equal"}]}


def scheduler_config(admin_kubeconfig: Path, *, dedicated: bool) -> dict[str, Any]:
    return {
        "apiVersion": "kubescheduler.config.k8s.io/v1",
        "kind": "KubeSchedulerConfiguration",
        "clientConnection": {"kubeconfig": str(admin_kubeconfig)},
        "leaderElection": {"leaderElect": False},
        "profiles": [{"schedulerName": DEDICATED_SCHEDULER if dedicated else "default-scheduler"}],
    }


def kubelet_config(
    paths: NodePaths, client_ca: Path, port: int, healthz_port: int, *, dedicated: bool = False
) -> dict[str, Any]:
    config = {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "containerRuntimeEndpoint": f"unix://{paths.socket}",
        "address": "127.0.0.1",
        "port": port,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": healthz_port,
        # The apiserver comes with a client certificate from the cluster's client CA (logs, exec); what it may
        # do is asked of the apiserver (SubjectAccessReview). Nobody else gets in.
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": True},
            "x509": {"clientCAFile": str(client_ca)},
        },
        "authorization": {"mode": "Webhook"},
        "podLogsDir": str(paths.pod_logs),
        "volumePluginDir": str(paths.root / "volume-plugins"),
        # The machine mounts cgroup v1, has no systemd to manage cgroups, and has swap rules of its own.
        "failCgroupV1": False,
        "cgroupDriver": "cgroupfs",
        "failSwapOn": False,
        "makeIPTablesUtilChains": False,
        # A small, shared disk: evict only when it is really full, never collect images on its own.
        "evictionHard": {
            "memory.available": "50Mi",
            "nodefs.available": "1%",
            "nodefs.inodesFree": "1%",
            "imagefs.available": "1%",
        },
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "serializeImagePulls": False,
        "shutdownGracePeriod": "0s",
        "nodeStatusReportFrequency": "10s",
    }
    if dedicated:
        config["registerWithTaints"] = [DEDICATED_TAINT]
    return config


# --- machine-wide state ---------------------------------------------------------------------


class MachineLock:
    """The one node on this machine: an flock on MACHINE_DIR/lock, released when its holder exits."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or MACHINE_DIR / "lock"
        self._fd: int | None = None

    def acquire(self) -> bool:
        """Take the lock if free; False if another process holds it."""
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return True

    def holder(self) -> str:
        with contextlib.suppress(OSError):
            return self.path.read_text().strip() or "unknown"
        return "unknown"

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def sysctl_record() -> SysctlRecord:
    return SysctlRecord(MACHINE_DIR / "sysctls.json")


def _kubepods_cgroups() -> list[Path]:
    return [*CGROUP_ROOT.glob("*/kubepods"), *CGROUP_ROOT.glob("kubepods")]


def _remove_empty_tree(top: Path) -> bool:
    """Remove `top` if it holds nothing but directories and sockets (a cgroup tree, kubelet's device-plugin
    directory), deepest first; False if something else, or a cgroup still in use, kept it."""
    entries = sorted(top.rglob("*"), key=lambda p: len(p.parts), reverse=True) if top.is_dir() else []
    for entry in [*entries, top]:
        with contextlib.suppress(OSError):
            if entry.is_socket():
                entry.unlink()
            elif entry.is_dir() and not entry.is_symlink():
                entry.rmdir()
    return not top.exists()


def shims_under(root: Path) -> list[ProcessIdentity]:
    """Live runtime shims working in a container bundle below `root` (a shim runs in its bundle directory)."""
    prefix = str(root.resolve()) + "/"
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            program = Path(os.fsdecode((entry / "cmdline").read_bytes().split(b"\0")[0])).name
            cwd = os.readlink(entry / "cwd") if program == SHIM else ""
        except OSError:
            continue
        if cwd.startswith(prefix):
            identity = ProcessIdentity.of(int(entry.name))
            if identity is not None:
                found.append(identity)
    return found


def container_inits(runc_root: Path) -> list[ProcessIdentity]:
    """The first process of every container runc knows under `runc_root`, by pid and start time."""
    found = []
    for state in runc_root.glob("*/*/state.json"):
        with contextlib.suppress(OSError, ValueError, KeyError):
            body = json.loads(state.read_text())
            identity = ProcessIdentity(int(body["init_process_pid"]), int(body["init_process_start"]), boot_id())
            if identity.alive():
                found.append(identity)
    return found


def mounts_under(root: Path) -> list[str]:
    """Mount points at or below `root` (this process's mount namespace, which the node shares)."""
    prefix = str(root.resolve())
    points = []
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            point = line.split()[4].encode().decode("unicode_escape")  # octal escapes such as \040
            if point == prefix or point.startswith(prefix + "/"):
                points.append(point)
    return sorted(set(points))


def _unmount_under(root: Path) -> list[str]:
    """Lazily unmount every mount at or below `root`, deepest first."""
    libc = ctypes.CDLL(None, use_errno=True)
    return [
        point
        for point in sorted(mounts_under(root), key=len, reverse=True)
        if libc.umount2(point.encode(), _MNT_DETACH) == 0
    ]


def clean_node_leftovers(root: Path, *, machine: bool) -> list[str]:
    """Stop and undo what a node under `root` left behind once its own processes are gone: shims that still
    run, their containers, mounts; with `machine` (the node lock is ours or free) also the bridge, log links,
    cgroups and sysctls. Returns what it did, for the record."""
    done = []
    for identity in shims_under(root):
        if stop_identity(identity, grace=2.0):
            done.append(SHIM)
    for identity in container_inits(NodePaths(root).runc_root):
        if stop_identity(identity, grace=2.0):
            done.append("container")
    if _unmount_under(root):
        done.append("mounts")
    if machine:
        done.extend(_clean_machine(root))
    return done


def _clean_kubelet_root(kubelet_root: Path) -> list[str]:
    done = ["kubelet mounts"] if _unmount_under(kubelet_root) else []
    if kubelet_root.exists():
        shutil.rmtree(kubelet_root, ignore_errors=True)
    return done


def _clean_machine(root: Path) -> list[str]:
    done = _clean_kubelet_root(NodePaths(root).kubelet_root)
    if Path(f"/sys/class/net/{BRIDGE}").exists():
        subprocess.run(["ip", "link", "delete", BRIDGE], check=False, capture_output=True)
        done.append(f"bridge {BRIDGE}")
    prefix = str(root.resolve())
    for link in LEGACY_LOG_LINKS.glob("*.log") if LEGACY_LOG_LINKS.is_dir() else []:
        with contextlib.suppress(OSError):
            if link.is_symlink() and os.readlink(link).startswith(prefix):
                link.unlink()
    # Ours: the pod network's entries, and the loopback entries of this node's sandboxes.
    paths = NodePaths(root)
    sandboxes = {
        entry.name
        for base in (paths.containerd_root, paths.containerd_state)
        for entry in (base / "io.containerd.grpc.v1.cri" / "sandboxes").glob("*")
    }
    for result in CNI_RESULTS.glob("*"):
        loopback_of = result.name.removeprefix("cni-loopback-").split("-")[0]
        ours = result.name.startswith(f"{CNI_NETWORK}-") or (
            result.name.startswith("cni-loopback-") and loopback_of in sandboxes
        )
        if ours:
            with contextlib.suppress(OSError):
                result.unlink()
    created = MACHINE_DIR / CREATED_RECORD
    with contextlib.suppress(FileNotFoundError, ValueError):
        remaining: list[str] = []
        for name in json.loads(created.read_text()):
            path = Path(name)
            if path == CGROUP_ROOT / "kubepods":  # stands for the kubepods tree in every hierarchy
                removed = all(_remove_empty_tree(top) for top in _kubepods_cgroups())
            else:
                removed = _remove_empty_tree(path)
            (done if removed else remaining).append(str(path))
        if remaining:
            created.write_text(json.dumps(remaining))
        else:
            created.unlink()
    restored = sysctl_record().restore()
    if restored:
        done.append("sysctls " + ", ".join(f"{r.name}={r.restored}" for r in restored))
    return done


def _note_created_paths() -> None:
    """Add to MACHINE_DIR's record the machine paths kubelet may create and that do not exist yet."""
    record = MACHINE_DIR / CREATED_RECORD
    try:
        noted: list[str] = json.loads(record.read_text())
    except (FileNotFoundError, ValueError):
        noted = []
    if not _kubepods_cgroups():
        noted.append(str(CGROUP_ROOT / "kubepods"))
    noted.extend(str(path) for path in MACHINE_PATHS if not path.exists())
    record.write_text(json.dumps(sorted(set(noted))))


def _reap_node(workdir: Path) -> list[str]:
    """records.reap's clean-up for a dead cluster that ran a node."""
    root = workdir / "node"
    if not root.is_dir():
        return []
    lock = MachineLock()
    machine = lock.acquire()
    try:
        return clean_node_leftovers(root, machine=machine)
    finally:
        lock.release()


add_leftover_cleaner(_reap_node)


# --- the node ------------------------------------------------------------------------------


@dataclass
class NodeTimings:
    # Each from start(): containerd's socket answering, the Node's Ready condition, and the not-ready taint
    # lifted as well (the node-lifecycle controller's part: only then are pods scheduled to it).
    containerd: float = 0.0
    ready: float = 0.0
    schedulable: float = 0.0
    pause_image: float = 0.0  # building and pushing the sandbox image (alongside the rest)

    def summary(self) -> str:
        return (
            f"node Ready in {self.ready:.2f}s, schedulable in {self.schedulable:.2f}s "
            f"(containerd {self.containerd:.2f}s, pause image {self.pause_image:.2f}s)"
        )


@dataclass
class Node:
    """containerd, kubelet and kube-scheduler for a running LocalCluster. Start with start(), stop with stop()."""

    binaries: NodeBinaries
    workdir: Path
    admin: AdminHTTP
    admin_kubeconfig: Path
    client_ca_file: Path
    registries: Sequence[Registry]
    record: ProcessRecord | None = None
    # Only pods with dedicated_pod_spec() run here (a scheduler of its own name, a taint they tolerate).
    dedicated: bool = False
    name: str = field(default_factory=lambda: socket.gethostname().lower())
    timings: NodeTimings = field(default_factory=NodeTimings)
    sandbox_image: str = ""
    processes: list[ManagedProcess] = field(default_factory=list)
    _lock: MachineLock = field(default_factory=MachineLock)
    _started: bool = False

    @property
    def paths(self) -> NodePaths:
        return NodePaths(self.workdir / "node")

    def start(self) -> Node:
        started = time.monotonic()
        if not self._lock.acquire():
            raise ProcessFailed(
                f"another local node runs on this machine (process {self._lock.holder()}): kubelet's cgroups, "
                "sysctls and the pod bridge are machine-wide, so there is one node per machine"
            )
        self._started = True
        try:
            self._start(started)
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self, started: float) -> None:
        self.timings = NodeTimings()
        paths = self.paths
        # A node that died here or elsewhere may have left runtime state; the lock is ours now.
        clean_node_leftovers(paths.root, machine=True)
        for directory in (
            paths.containerd_root,
            paths.containerd_state,
            paths.runc_root,
            paths.registry_hosts,
            paths.cni_conf,
            paths.cni_ipam,
            paths.kubelet_root,
            paths.pod_logs,
            MACHINE_DIR / "s",
        ):
            directory.mkdir(parents=True, exist_ok=True)
        plain = next(r for r in self.registries if r.kind is RegistryKind.PLAIN)
        self.sandbox_image = f"{plain.host}/{PAUSE_REPOSITORY}:{read_versions()['PAUSE_VERSION']}"
        for registry in self.registries:
            self.trust_registry(registry)
        (paths.cni_conf / "10-imagestreams.conflist").write_text(json.dumps(cni_conflist(paths), indent=1))
        paths.containerd_config.write_text(containerd_config(paths, self.binaries, self.sandbox_image))

        # containerd and kubelet first: the scheduler and the sandbox image are needed only by the first pod,
        # so they start while kubelet registers the node (on two cores, order matters).
        containerd = self._spawn(
            "containerd",
            [str(self.binaries.containerd), f"--config={paths.containerd_config}"],
            # containerd finds its shim on PATH.
            env={"PATH": f"{self.binaries.containerd.parent}:{os.environ.get('PATH', '/usr/bin:/bin')}"},
        )
        sysctl_record().save()
        _note_created_paths()
        kubelet_port, healthz_port = free_port(), free_port()
        paths.kubelet_config.write_text(
            yaml.safe_dump(
                kubelet_config(paths, self.client_ca_file, kubelet_port, healthz_port, dedicated=self.dedicated)
            )
        )
        scheduler_yaml = paths.root / "kube-scheduler.yaml"
        scheduler_yaml.write_text(yaml.safe_dump(scheduler_config(self.admin_kubeconfig, dedicated=self.dedicated)))
        self.timings.containerd = containerd.wait_until(
            lambda: _socket_answers(paths.socket), CONTAINERD_READY_TIMEOUT, f"{paths.socket} accepting"
        )
        kubelet = self._spawn(
            "kubelet",
            [
                str(self.binaries.kubelet),
                f"--config={paths.kubelet_config}",
                f"--kubeconfig={self.admin_kubeconfig}",
                f"--root-dir={paths.kubelet_root}",
                f"--cert-dir={paths.kubelet_root / 'pki'}",
                "--v=1",
            ],
        )
        scheduler = self._spawn(
            "kube-scheduler",
            [
                str(self.binaries.kube_scheduler),
                f"--config={scheduler_yaml}",
                "--bind-address=127.0.0.1",
                "--secure-port=0",
                "--v=1",
            ],
        )
        pushed: list[BaseException] = []
        pusher = threading.Thread(target=self._push_pause_image, args=(plain, pushed), name="pause-image")
        pusher.start()
        try:
            kubelet.wait_until(
                lambda: self._schedulable(started), NODE_READY_TIMEOUT, f"node {self.name} Ready and schedulable"
            )
            if not scheduler.running():
                raise ProcessFailed(f"kube-scheduler exited; last log lines:\n{scheduler.log_tail()}")
        finally:
            pusher.join()
        if pushed:
            raise pushed[0]
        self._create_runtime_class()
        self.timings.schedulable = time.monotonic() - started

    def _spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> ManagedProcess:
        process = ManagedProcess(name, argv, self.workdir / "logs", env=env, record=self.record)
        self.processes.append(process)
        process.start()
        return process

    def _push_pause_image(self, registry: Registry, errors: list[BaseException]) -> None:
        t0 = time.monotonic()
        try:
            with PushClient(registry.url, ca_file=registry.ca_file) as client:
                tag = self.sandbox_image.rsplit(":", 1)[1]
                client.push_image(PAUSE_REPOSITORY, tag, program_image(self.binaries.pause))
        except BaseException as error:
            errors.append(error)
        self.timings.pause_image = time.monotonic() - t0

    def _node(self) -> dict[str, Any] | None:
        status, body = self.admin.get(f"/api/v1/nodes/{self.name}")
        return json.loads(body) if status == 200 else None

    def _schedulable(self, started: float) -> bool:
        """Ready, and without the not-ready taint; notes when Ready was first seen."""
        node = self._node()
        if node is None:
            return False
        conditions = {c["type"]: c["status"] for c in node.get("status", {}).get("conditions", [])}
        if conditions.get("Ready") != "True":
            return False
        if not self.timings.ready:
            self.timings.ready = time.monotonic() - started
        return NOT_READY_TAINT not in {t["key"] for t in node.get("spec", {}).get("taints") or []}

    def _create_runtime_class(self) -> None:
        """The RuntimeClass a pod names to be exempt from Pod Security admission (a pod with hostNetwork that reaches
        the loopback apiserver, in a namespace that enforces `restricted`); deleted again by stop()."""
        body = {
            "apiVersion": "node.k8s.io/v1",
            "kind": "RuntimeClass",
            "metadata": {"name": HOST_NETWORK_RUNTIME_CLASS},
            "handler": RUNTIME_HANDLER,
        }
        status, answer = self.admin.send("POST", RUNTIME_CLASSES, body)
        if status not in (201, 409):  # 409: still there from an earlier node of this cluster
            raise ProcessFailed(f"cannot create RuntimeClass {HOST_NETWORK_RUNTIME_CLASS}: {status} {answer[:300]!r}")

    def trust_registry(self, registry: Registry) -> None:
        """Tell containerd how to reach a registry (HTTP, or HTTPS with its CA); used from the next pull on."""
        directory = self.paths.registry_hosts / registry.host
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "hosts.toml").write_text(registry_hosts_toml(registry))

    def stop(self) -> None:
        """Drain and stop: cordon, delete this node's pods, stop kubelet, kill the runtime's tasks, stop
        containerd, undo mounts, delete the Node, put back the machine-wide state. Safe to call twice."""
        if not self._started:
            return
        names = {p.name: p for p in self.processes}
        with contextlib.suppress(OSError, ValueError):
            self._drain()
        for name in ("kube-scheduler", "kubelet"):
            if name in names:
                names[name].stop()
        if "containerd" in names and names["containerd"].running():
            self._kill_tasks()
        for process in reversed(self.processes):
            process.stop()
        self.processes.clear()
        clean_node_leftovers(self.paths.root, machine=True)
        for path in (f"/api/v1/nodes/{self.name}", f"{RUNTIME_CLASSES}/{HOST_NETWORK_RUNTIME_CLASS}"):
            with contextlib.suppress(OSError):
                self.admin.send("DELETE", path)
        self._lock.release()
        self._started = False

    def _drain(self) -> None:
        if self._node() is None:
            return
        self.admin.send(
            "PATCH",
            f"/api/v1/nodes/{self.name}",
            {"spec": {"unschedulable": True}},
            content_type="application/merge-patch+json",
        )
        deadline = time.monotonic() + DRAIN_TIMEOUT
        deleted: set[str] = set()
        while time.monotonic() < deadline:
            status, body = self.admin.get(f"/api/v1/pods?fieldSelector=spec.nodeName%3D{self.name}")
            pods = json.loads(body).get("items", []) if status == 200 else []
            if not pods:
                return
            for pod in pods:
                meta = pod["metadata"]
                key = f"{meta['namespace']}/{meta['name']}"
                if key not in deleted:
                    deleted.add(key)
                    self.admin.send(
                        "DELETE",
                        f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}",
                        {"gracePeriodSeconds": 2},
                    )
            time.sleep(0.2)

    def _ctr(self, *args: str) -> str:
        result = subprocess.run(
            [str(self.binaries.ctr), f"--address={self.paths.socket}", f"--namespace={CRI_NAMESPACE}", *args],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        return result.stdout

    def _kill_tasks(self) -> None:
        for task in self._ctr("tasks", "list", "--quiet").split():
            self._ctr("tasks", "delete", "--force", task)


def _socket_answers(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(1)
        sock.connect(str(path))
    return True
