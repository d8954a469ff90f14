"""`python -m imagestreams.imagebuild`: build the operator image without a container engine, or re-pin its inputs.

    python -m imagestreams.imagebuild [--push HOST[:PORT]/REPOSITORY[:TAG]] [--output DIR] [--cache DIR]
    python -m imagestreams.imagebuild lock

The build writes an OCI image layout, the SPDX SBOM and the digest under --output (build/image), and
pushes the image when --push names a repository (plain HTTP for a loopback registry or with --plain-http;
REGISTRY_USERNAME and REGISTRY_PASSWORD, if set, are the credentials). `lock` rewrites debian.lock,
requirements.lock and build-requirements.lock from apt's candidates and the versions of this virtualenv.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from imagestreams.imagebuild import debian, python
from imagestreams.imagebuild.build import REPO_ROOT, BuildResult, build, default_cache, provenance
from imagestreams.localcluster.images import PushClient


@dataclass(frozen=True)
class PushTarget:
    host: str
    repository: str
    tag: str | None

    @classmethod
    def parse(cls, reference: str) -> PushTarget:
        """`127.0.0.1:5000/team/operator:v1` is host `127.0.0.1:5000`, repository `team/operator`, tag `v1`."""
        host, slash, rest = reference.partition("/")
        if not slash or not rest or ("." not in host and ":" not in host and host != "localhost"):
            raise ValueError(f"{reference!r}: expected HOST[:PORT]/REPOSITORY[:TAG]")
        repository, colon, tag = rest.rpartition(":") if ":" in rest.rsplit("/", 1)[-1] else (rest, "", "")
        if "@" in rest:
            raise ValueError(f"{reference!r}: push by tag; the digest is the build's")
        return cls(host, repository, tag if colon else None)

    def is_loopback(self) -> bool:
        name = self.host.rsplit(":", 1)[0].strip("[]") if not self.host.startswith("[") else self.host[1:].split("]")[0]
        if name == "localhost":
            return True
        try:
            return ipaddress.ip_address(name).is_loopback
        except ValueError:
            return False


def push(result: BuildResult, target: PushTarget, *, plain_http: bool, ca_file: Path | None) -> str:
    scheme = "http" if plain_http or target.is_loopback() else "https"
    with PushClient(
        f"{scheme}://{target.host}",
        ca_file=ca_file,
        username=os.environ.get("REGISTRY_USERNAME"),
        password=os.environ.get("REGISTRY_PASSWORD"),
        timeout=120.0,
    ) as client:
        return client.push_image(target.repository, target.tag or result.tag, result.image)


def _mib(size: int) -> str:
    return f"{size / 1048576:.1f} MiB"


def report(result: BuildResult) -> None:
    print(f"image    {result.digest}")
    print(f"size     {_mib(result.compressed_size)} compressed, layers:")
    for layer, name in zip(result.layers, ("debian base", "python packages", "project"), strict=True):
        print(f"           {_mib(len(layer.compressed)):>10} ({_mib(layer.uncompressed_size)} unpacked) {name}")
    debs, wheels = len(result.debian_packages), len(result.python_packages)
    print(f"contents {debs} Debian packages, {wheels} Python packages + {result.project.name}")
    print(f"output   {result.output}/oci (OCI layout), sbom.spdx.json, digest")
    print("timings  " + ", ".join(f"{name} {seconds:.1f}s" for name, seconds in result.timings.items()))


def lock(repo: Path) -> None:
    debian.DEBIAN_LOCK.write_text(debian.render_lock(debian.resolve()))
    python.REQUIREMENTS_LOCK.write_text(python.render_lock(python.lock_runtime(repo), python.REQUIREMENTS_HEADER))
    python.BUILD_LOCK.write_text(python.render_lock(python.lock_build(repo), python.BUILD_HEADER))
    for path in (debian.DEBIAN_LOCK, python.REQUIREMENTS_LOCK, python.BUILD_LOCK):
        print(f"wrote {path.relative_to(repo)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m imagestreams.imagebuild", description=__doc__.split("\n")[0])
    parser.add_argument("command", nargs="?", choices=["build", "lock"], default="build")
    parser.add_argument("--push", metavar="HOST/REPOSITORY[:TAG]", help="push the image there (tag: the version)")
    parser.add_argument("--plain-http", action="store_true", help="push over HTTP (default only for loopback)")
    parser.add_argument("--ca-file", type=Path, help="CA bundle that signed the registry's certificate")
    parser.add_argument("--output", type=Path, default=REPO_ROOT / "build" / "image")
    parser.add_argument("--cache", type=Path, default=default_cache(), help="downloaded .debs and wheels")
    parser.add_argument("--source-url", help="org.opencontainers.image.source (default: the git remote, if a URL)")
    args = parser.parse_args(argv)
    if args.command == "lock":
        lock(REPO_ROOT)
        return 0
    target = PushTarget.parse(args.push) if args.push else None
    started = time.monotonic()
    result = build(output=args.output, cache=args.cache, prov=provenance(REPO_ROOT, source_url=args.source_url or None))
    report(result)
    print(f"built in {time.monotonic() - started:.1f}s")
    if target is not None:
        pushed = push(result, target, plain_http=args.plain_http, ca_file=args.ca_file)
        if pushed != result.digest:
            print(f"error: the registry stored {pushed}, not {result.digest}", file=sys.stderr)
            return 1
        print(f"pushed   {target.host}/{target.repository}:{target.tag or result.tag}@{pushed}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
