#!/usr/bin/env bash
# Idempotent provisioning for development and CI: Debian packages, the Python
# virtualenv with the project and its dev extras, and the pinned Go-built
# binaries. Safe to re-run; each step does nothing when already done.
#
#   scripts/setup.sh            everything
#   scripts/setup.sh --python   only the virtualenv (enough for `make lint`)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
started=$SECONDS
say() { printf '[setup %4ds] %s\n' "$((SECONDS - started))" "$*"; }

python_only=false
[[ "${1:-}" == "--python" ]] && python_only=true

# --- Debian packages ---------------------------------------------------------
# runc and containernetworking-plugins (bridge, host-local) serve the local
# cluster's node (`imagestreams-localcluster up --node`); containerd itself is
# built from the Go module proxy by scripts/build-binaries.sh.
debian_packages=(docker-registry openssl ca-certificates runc containernetworking-plugins)
install_debian_packages() {
  local missing=()
  for pkg in "${debian_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  if ((${#missing[@]} == 0)); then
    say "debian packages present: ${debian_packages[*]}"
    return
  fi
  local sudo=""
  if [[ "$(id -u)" != 0 ]]; then
    command -v sudo >/dev/null || { echo "setup: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
    sudo="sudo"
  fi
  say "installing debian packages: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# --- Python virtualenv ---------------------------------------------------------
python="${PYTHON:-python3}"
setup_venv() {
  "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || { echo "setup: Python >= 3.11 is required ($python is $("$python" --version 2>&1))" >&2; exit 1; }
  local stamp=.venv/.installed-from
  local want
  want="$(sha256sum pyproject.toml | cut -c1-16)"
  if [[ -x .venv/bin/python && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    say "virtualenv .venv up to date"
    return
  fi
  say "creating .venv and installing the project with its dev extras"
  [[ -x .venv/bin/python ]] || "$python" -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e '.[dev]'
  echo "$want" > "$stamp"
  say "virtualenv ready"
}

if $python_only; then
  setup_venv
  exit 0
fi
install_debian_packages
setup_venv
scripts/build-binaries.sh
say "setup complete"
