#!/usr/bin/env bash
# One-step, idempotent setup of a Debian 12 machine (as root) for kvmfleet.libvirt:
#   - Debian packages from bindep.txt
#   - a virtualenv in .venv with requirements-dev.txt
#   - the checkout importable as the collection kvmfleet.libvirt
#   - the Debian kernel and busybox of the other architectures' test guests (tools/testguest.py fetch)
#   - virtlogd and libvirtd running, qemu:///system answering
# Needs nothing but apt and python3. Safe to run again: it only does what is missing.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv="$repo/.venv"
log() { printf '[setup] %s\n' "$*" >&2; }

need_root() {
  if [ "$(id -u)" != 0 ]; then
    echo "setup.sh must run as root (it installs Debian packages and starts libvirtd)" >&2
    exit 1
  fi
}

# --- Debian packages ----------------------------------------------------------
bindep_packages() {
  # The platform:dpkg entries of bindep.txt, without the bracketed profiles.
  sed -e 's/#.*//' "$repo/bindep.txt" | awk 'NF && /platform:dpkg/ {print $1}'
}

install_packages() {
  local missing=()
  local p
  for p in $(bindep_packages); do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if [ ${#missing[@]} -eq 0 ]; then
    log "Debian packages: all present"
    return
  fi
  log "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # Packages never start their services here (openssh-server's sshd on the host, for one): the tests start the
  # daemons they need, where they need them. policy-rc.d is Debian's switch for that, kept only for the install.
  local policy=/usr/sbin/policy-rc.d own_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    own_policy=1
  fi
  apt-get install -y -q "${missing[@]}" >/dev/null || { [ "$own_policy" = 0 ] || rm -f "$policy"; return 1; }
  [ "$own_policy" = 0 ] || rm -f "$policy"
}

# --- Python virtualenv --------------------------------------------------------
install_python() {
  local stamp="$venv/.requirements.sha"
  local want
  want=$(cat "$repo/requirements.txt" "$repo/requirements-dev.txt" | sha256sum | cut -d' ' -f1)
  if [ -x "$venv/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    log "virtualenv: up to date"
    return
  fi
  log "creating virtualenv in $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --upgrade pip wheel
  "$venv/bin/pip" install -q -r "$repo/requirements-dev.txt"
  echo "$want" > "$stamp"
}

# ansible-test sanity --venv downloads pip's bootstrap script (get-pip.py), which is out of
# reach here. It first looks for a cached copy; this stand-in runs pip from the pip wheel
# (fetched from PyPI) and drops get-pip's own --no-setuptools/--no-wheel flags.
install_get_pip_standin() {
  local cache="$HOME/.ansible/test/cache" pipver
  pipver=$("$venv/bin/python" - <<'PY'
import pathlib, re, ansible_test
src = pathlib.Path(ansible_test.__file__).parent / "_internal" / "python_requirements.py"
print(re.search(r"pip='([0-9.]+)'", src.read_text()).group(1))
PY
  )
  local script="$cache/get_pip_${pipver//./_}.py"
  local wheel="$cache/pip-${pipver}-py3-none-any.whl"
  mkdir -p "$cache"
  [ -f "$wheel" ] || "$venv/bin/pip" download -q --no-deps --only-binary=:all: -d "$cache" "pip==$pipver"
  cat > "$script.tmp" <<PY
"""Stand-in for get-pip.py $pipver, written by kvmfleet's scripts/setup.sh."""
import sys

sys.path.insert(0, "$wheel")
from pip._internal.cli.main import main  # noqa: E402

args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
sys.exit(main(["install"] + args))
PY
  mv "$script.tmp" "$script"
}

# --- the collection path ----------------------------------------------------------
link_collection() {
  local dest="$venv/collections/ansible_collections/kvmfleet"
  mkdir -p "$dest"
  if [ "$(readlink "$dest/libvirt" 2>/dev/null)" != "$repo" ]; then
    rm -f "$dest/libvirt"
    ln -s "$repo" "$dest/libvirt"
  fi
  log "collection: kvmfleet.libvirt -> $repo (ANSIBLE_COLLECTIONS_PATH=$venv/collections)"
}

# --- libvirt daemons ------------------------------------------------------------
alive_pid() {  # $1: a pid file whose process is alive (and not a zombie)
  local pid
  pid=$(cat "$1" 2>/dev/null) || return 1
  grep -qs '^State:.*[^Z] (' "/proc/$pid/status"
}

start_daemons() {
  if [ -d /run/systemd/system ]; then
    systemctl start virtlogd.socket libvirtd.socket libvirtd.service 2>/dev/null || systemctl start libvirtd
  else
    # The host's own daemons, by their pid files: the test bed's (tests/testbed) run in namespaces of their own,
    # with pid files of their own, and a pgrep would count them.
    alive_pid /run/virtlogd.pid || { log "starting virtlogd"; virtlogd -d; }
    alive_pid /run/libvirtd.pid || { log "starting libvirtd"; libvirtd -d; }
  fi
  local _
  for _ in $(seq 1 60); do
    if "$venv/bin/python" -c 'import libvirt, sys; libvirt.registerErrorHandler(lambda *a: None, None); libvirt.open("qemu:///system").close()' 2>/dev/null; then
      log "libvirtd: qemu:///system answers"
      return
    fi
    sleep 0.5
  done
  echo "libvirtd did not answer on qemu:///system within 30 s; see /var/log/libvirt/" >&2
  exit 1
}

# --- test guests of other architectures ----------------------------------------
fetch_foreign_guests() {
  # Debian's kernel and busybox for aarch64, ppc64le and s390x (dpkg --add-architecture, apt-get download), cached
  # in /var/cache/kvmfleet-testguest: fetched once, a no-op afterwards.
  python3 "$repo/tools/testguest.py" fetch aarch64 ppc64le s390x >/dev/null
  log "test guests of other architectures: fetched (/var/cache/kvmfleet-testguest)"
}

main() {
  need_root
  install_packages
  install_python
  install_get_pip_standin
  link_collection
  fetch_foreign_guests
  start_daemons
}

main "$@"
