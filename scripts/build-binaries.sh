#!/usr/bin/env bash
# Builds the pinned Kubernetes binaries (control plane and node), etcd, helm,
# containerd and the project's pause program from the Go module proxy into a
# versioned cache outside the work tree, and does nothing for a binary whose
# cached copy already reports the pinned version.
#
# Usage: scripts/build-binaries.sh [pause] [etcd] [helm] [containerd] [kubernetes]
#        (default: all)
#
#   IMAGESTREAMS_CACHE  cache root (default: ~/.cache/imagestreams)
#
# Layout: $IMAGESTREAMS_CACHE/bin/<component>-<version>/<binary>, with the Go
# module and build caches under $IMAGESTREAMS_CACHE/go so a rebuild is cheap.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=../versions.env
source "$here/versions.env"

cache="${IMAGESTREAMS_CACHE:-$HOME/.cache/imagestreams}"
export GOMODCACHE="$cache/go/mod"
export GOCACHE="$cache/go/build"
export GOFLAGS="-mod=mod"
export CGO_ENABLED=0
export GOTOOLCHAIN=local
mkdir -p "$cache/src" "$GOMODCACHE" "$GOCACHE"

started=$SECONDS
say() { printf '[build-binaries %4ds] %s\n' "$((SECONDS - started))" "$*"; }

command -v go >/dev/null || { echo "build-binaries: 'go' is not on PATH; install Go >= 1.26" >&2; exit 1; }

# has_version BINARY EXPECTED ARGS...: true when BINARY exists and its version output contains EXPECTED.
has_version() {
  local bin="$1" expected="$2"; shift 2
  [[ -x "$bin" ]] || return 1
  # Capture first: with pipefail, `grep -q` closing the pipe early would fail the check at random.
  local output
  output="$("$bin" "$@" 2>/dev/null)" || return 1
  [[ "$output" == *"$expected"* ]]
}

# build_with_progress OUTDIR PKG...: go build with a running count of compiled packages.
build_with_progress() {
  local outdir="$1"; shift
  local total tags=()
  [[ -n "${BUILD_TAGS:-}" ]] && tags=(-tags "$BUILD_TAGS")
  total=$(go list "${tags[@]}" -deps "$@" | wc -l)
  say "compiling $total packages for: $*"
  mkdir -p "$outdir"
  local count=0 last=$SECONDS
  go build "${tags[@]}" -v -trimpath -ldflags "$LDFLAGS" -o "$outdir/" "$@" 2>&1 | while IFS= read -r line; do
    if [[ "$line" == *" "* || "$line" == *:* ]]; then
      echo "$line"   # compiler diagnostics pass through
    else
      count=$((count + 1))
      if (( SECONDS - last >= 15 )); then
        say "  $count/$total packages compiled"
        last=$SECONDS
      fi
    fi
  done
  # the pipeline's exit status is the while loop's; check go build's
  [[ "${PIPESTATUS[0]}" -eq 0 ]] || { echo "build-binaries: go build failed for $*" >&2; exit 1; }
}

# write_tools_go PKG...: a build-tagged file that puts the programs into the module graph.
write_tools_go() {
  { echo '//go:build tools'; echo; echo 'package tools'; echo; echo 'import ('
    for p in "$@"; do printf '\t_ "%s"\n' "$p"; done
    echo ')'; } > tools.go
}

# --- Kubernetes: kube-apiserver, kube-controller-manager, kubectl, kubelet, kube-scheduler
k8s_programs=(kube-apiserver kube-controller-manager kubectl kubelet kube-scheduler)
# k8s_cached PROGRAM: true when the cached PROGRAM reports the pinned version.
k8s_cached() {
  if [[ "$1" == kubectl ]]; then
    has_version "$k8s_bin/kubectl" "$K8S_VERSION" version --client
  else
    has_version "$k8s_bin/$1" "Kubernetes $K8S_VERSION" --version
  fi
}
build_kubernetes() {
  k8s_bin="$cache/bin/kubernetes-$K8S_VERSION"
  local missing=() prog
  for prog in "${k8s_programs[@]}"; do
    k8s_cached "$prog" || missing+=("$prog")
  done
  if ((${#missing[@]} == 0)); then
    say "kubernetes $K8S_VERSION: cached in $k8s_bin"
    return
  fi
  say "kubernetes $K8S_VERSION: building ${missing[*]} (cold, all five: about 15-25 min on 2 cores)"
  src="$cache/src/kubernetes-$K8S_VERSION"
  rm -rf "$src"; mkdir -p "$src"; cd "$src"
  go mod init local/k8sbins >/dev/null 2>&1
  # The kubernetes module requires its staging modules at v0.0.0 and maps them to
  # ./staging; replace each with its published v0.X.Y so the graph resolves.
  gomod="$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')"
  staging_version="v0${K8S_VERSION#v1}"
  for mod in $(sed -n 's#^\s*\(k8s.io/[a-z0-9-]*\) => ./staging/.*#\1#p' "$gomod"); do
    go mod edit -replace="$mod=$mod@$staging_version"
  done
  go mod edit -require="k8s.io/kubernetes@$K8S_VERSION"
  local pkgs=()
  for prog in "${k8s_programs[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$prog"); done
  write_tools_go "${pkgs[@]}"
  say "resolving modules (downloads on a cold cache)"
  go mod tidy >/dev/null
  minor="${K8S_VERSION#v1.}"; minor="${minor%%.*}"
  LDFLAGS="-s -w"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    LDFLAGS+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    LDFLAGS+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  done
  # Only the missing programs: the others are current, and linking one costs a minute.
  pkgs=()
  for prog in "${missing[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$prog"); done
  BUILD_TAGS="" build_with_progress "$k8s_bin" "${pkgs[@]}"
  for prog in "${missing[@]}"; do
    k8s_cached "$prog" || { echo "build-binaries: built $prog does not report $K8S_VERSION" >&2; exit 1; }
  done
  say "kubernetes $K8S_VERSION: built ${missing[*]} into $k8s_bin"
}

# --- containerd (the node's container runtime) -----------------------------
build_containerd() {
  local bin="$cache/bin/containerd-$CONTAINERD_VERSION"
  local module=github.com/containerd/containerd/v2
  if has_version "$bin/containerd" "$CONTAINERD_VERSION" --version \
     && has_version "$bin/ctr" "$CONTAINERD_VERSION" --version \
     && has_version "$bin/containerd-shim-runc-v2" "$CONTAINERD_VERSION" -v; then
    say "containerd $CONTAINERD_VERSION: cached in $bin"
    return
  fi
  say "containerd $CONTAINERD_VERSION: building"
  src="$cache/src/containerd-$CONTAINERD_VERSION"
  rm -rf "$src"; mkdir -p "$src"; cd "$src"
  go mod init local/containerdbin >/dev/null 2>&1
  write_tools_go "$module/cmd/containerd" "$module/cmd/containerd-shim-runc-v2" "$module/cmd/ctr"
  go mod edit -require="$module@$CONTAINERD_VERSION"
  go mod tidy >/dev/null
  LDFLAGS="-s -w -X $module/version.Version=$CONTAINERD_VERSION -X $module/version.Package=$module"
  # Static, without the cgo-only snapshotters (btrfs, devmapper, zfs); the shim without gRPC.
  local tags="no_btrfs no_devmapper no_zfs urfave_cli_no_docs osusergo netgo"
  BUILD_TAGS="$tags" build_with_progress "$bin" "$module/cmd/containerd" "$module/cmd/ctr"
  BUILD_TAGS="$tags no_grpc" build_with_progress "$bin" "$module/cmd/containerd-shim-runc-v2"
  has_version "$bin/containerd" "$CONTAINERD_VERSION" --version \
    || { echo "build-binaries: built containerd does not report $CONTAINERD_VERSION" >&2; exit 1; }
  say "containerd $CONTAINERD_VERSION: built into $bin"
}

# --- pause: the node's sandbox program, also the entrypoint of test images -----
# Static and tiny: copies each file named in its arguments to stdout, then
# waits for SIGTERM or SIGINT and exits 0.
build_pause() {
  local bin="$cache/bin/pause-$PAUSE_VERSION"
  if has_version "$bin/pause" "imagestreams-pause $PAUSE_VERSION" --version; then
    say "pause $PAUSE_VERSION: cached in $bin"
    return
  fi
  say "pause $PAUSE_VERSION: building"
  src="$cache/src/pause-$PAUSE_VERSION"
  rm -rf "$src"; mkdir -p "$src"; cd "$src"
  go mod init local/pause >/dev/null 2>&1
  cat > main.go <<'GO'
package main

import (
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

var version = "dev"

func main() {
	if len(os.Args) == 2 && os.Args[1] == "--version" {
		fmt.Println("imagestreams-pause", version)
		return
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	for _, name := range os.Args[1:] {
		f, err := os.Open(name)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		_, err = io.Copy(os.Stdout, f)
		f.Close()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	<-stop
}
GO
  LDFLAGS="-s -w -X main.version=$PAUSE_VERSION"
  BUILD_TAGS="" build_with_progress "$bin" .
  has_version "$bin/pause" "imagestreams-pause $PAUSE_VERSION" --version \
    || { echo "build-binaries: built pause does not report $PAUSE_VERSION" >&2; exit 1; }
  say "pause $PAUSE_VERSION: built into $bin"
}

# --- etcd -------------------------------------------------------------------
build_etcd() {
  etcd_bin="$cache/bin/etcd-$ETCD_VERSION"
  if has_version "$etcd_bin/etcd" "etcd Version: ${ETCD_VERSION#v}" --version; then
    say "etcd $ETCD_VERSION: cached in $etcd_bin"
  else
    say "etcd $ETCD_VERSION: building"
    src="$cache/src/etcd-$ETCD_VERSION"
    rm -rf "$src"; mkdir -p "$src"; cd "$src"
    go mod init local/etcdbin >/dev/null 2>&1
    write_tools_go go.etcd.io/etcd/server/v3
    go mod edit -require="go.etcd.io/etcd/server/v3@$ETCD_VERSION"
    go mod tidy >/dev/null
    LDFLAGS="-s -w"
    build_with_progress "$etcd_bin" go.etcd.io/etcd/server/v3
    mv "$etcd_bin/v3" "$etcd_bin/etcd" 2>/dev/null || mv "$etcd_bin/server" "$etcd_bin/etcd"
    has_version "$etcd_bin/etcd" "etcd Version: ${ETCD_VERSION#v}" --version \
      || { echo "build-binaries: built etcd does not report $ETCD_VERSION" >&2; exit 1; }
    say "etcd $ETCD_VERSION: built into $etcd_bin"
  fi
}

# --- helm -------------------------------------------------------------------
build_helm() {
  helm_bin="$cache/bin/helm-$HELM_VERSION"
  if has_version "$helm_bin/helm" "$HELM_VERSION" version --short; then
    say "helm $HELM_VERSION: cached in $helm_bin"
  else
    say "helm $HELM_VERSION: building"
    src="$cache/src/helm-$HELM_VERSION"
    rm -rf "$src"; mkdir -p "$src"; cd "$src"
    go mod init local/helmbin >/dev/null 2>&1
    write_tools_go helm.sh/helm/v3/cmd/helm
    go mod edit -require="helm.sh/helm/v3@$HELM_VERSION"
    go mod tidy >/dev/null
    minor="${K8S_VERSION#v1.}"; minor="${minor%%.*}"
    LDFLAGS="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
    LDFLAGS+=" -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
    for pkg in helm.sh/helm/v3/pkg/chartutil helm.sh/helm/v3/pkg/lint/rules; do
      LDFLAGS+=" -X $pkg.k8sVersionMajor=1 -X $pkg.k8sVersionMinor=$minor"
    done
    build_with_progress "$helm_bin" helm.sh/helm/v3/cmd/helm
    has_version "$helm_bin/helm" "$HELM_VERSION" version --short \
      || { echo "build-binaries: built helm does not report $HELM_VERSION" >&2; exit 1; }
    say "helm $HELM_VERSION: built into $helm_bin"
  fi
}

# Cheapest first, so a failure in a small build shows before the long one.
for component in "${@:-pause etcd helm containerd kubernetes}"; do
  for c in $component; do
    case "$c" in
      pause|etcd|helm|containerd|kubernetes) "build_$c" ;;
      *) echo "build-binaries: unknown component '$c' (expected pause, etcd, helm, containerd or kubernetes)" >&2; exit 2 ;;
    esac
  done
done

say "all binaries ready under $cache/bin ($(du -sh "$cache" | cut -f1) in the cache)"
