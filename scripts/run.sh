#!/usr/bin/env bash
# Entry point for the README's commands. Every verb runs scripts/setup.sh first.
#   run.sh demo      set up, then run playbooks/demo.yml against this machine
#   run.sh test      set up, then unit tests, integration tests, molecule role scenarios,
#                    ansible-test sanity, ansible-lint
#   run.sh unit | integration | molecule | sanity | lint | bench   one part only (extra args go to the tool)
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
verb=${1:-}
[ $# -gt 0 ] && shift

bash "$repo/scripts/setup.sh"

export PATH="$repo/.venv/bin:$PATH"
export ANSIBLE_COLLECTIONS_PATH="$repo/.venv/collections"
export ANSIBLE_COLLECTIONS_SCAN_SYS_PATH=false
export ANSIBLE_NOCOLOR=1
export ANSIBLE_FORCE_COLOR=0

section() { printf '\n==== %s ====\n' "$*"; }

run_demo() {
  section "demo: playbooks/demo.yml"
  ansible-playbook -i playbooks/inventories/local.yml playbooks/demo.yml "$@"
}

run_unit() {
  section "unit tests"
  python -m pytest -q tests/unit "$@"
}

run_integration() {
  section "integration tests (real libvirtd)"
  python -m pytest -q tests/integration "$@"
}

# ansible-test must run inside .../ansible_collections/kvmfleet/libvirt: copy the files git
# knows (tracked, or new and not ignored) into such a tree and run it there.
run_sanity() {
  section "ansible-test sanity"
  # Outside the checkout: inside it, ansible-test would take the outer git repo's file list.
  local top dest
  top=$(mktemp -d "${TMPDIR:-/tmp}/kvmfleet-sanity.XXXXXX")
  # shellcheck disable=SC2064  # expand now: $top is local to this function
  trap "rm -rf '$top'" RETURN
  dest="$top/ansible_collections/kvmfleet/libvirt"
  mkdir -p "$dest"
  git ls-files -z --cached --others --exclude-standard \
    | python -c 'import os, sys; sys.stdout.write("\0".join(p for p in sys.stdin.read().split("\0") if p and os.path.isfile(p)))' \
    | tar --null -T - -cf - | tar -xf - -C "$dest"
  (cd "$dest" && ansible-test sanity --venv --python 3.11 --color no "$@")
}

run_lint() {
  section "ansible-lint (production profile)"
  ansible-lint --offline --profile production "$@"
  section "ansible-doc renders every module"
  local m name
  for m in plugins/modules/*.py; do
    name=$(basename "$m" .py)
    ansible-doc "kvmfleet.libvirt.$name" | grep -q "kvmfleet.libvirt.$name" \
      || { echo "ansible-doc cannot render kvmfleet.libvirt.$name" >&2; return 1; }
    echo "ok: kvmfleet.libvirt.$name"
  done
}

# Role scenarios: molecule with the delegated driver against this machine's libvirtd.
run_molecule() {
  section "molecule (role scenarios)"
  local scenario role name
  for scenario in roles/*/molecule/*/molecule.yml; do
    [ -e "$scenario" ] || continue
    role=$(echo "$scenario" | cut -d/ -f2)
    name=$(basename "$(dirname "$scenario")")
    echo "-- role $role, scenario $name"
    (cd "roles/$role" && NO_COLOR=1 MOLECULE_PYTHON="$repo/.venv/bin/python" molecule test -s "$name" "$@")
  done
}

run_bench() {
  section "benchmarks"
  python tests/bench/run.py "$@"
}

case "$verb" in
  demo) run_demo "$@" ;;
  test)
    run_unit
    run_integration
    run_molecule
    run_sanity
    run_lint
    ;;
  unit) run_unit "$@" ;;
  integration) run_integration "$@" ;;
  molecule) run_molecule "$@" ;;
  sanity) run_sanity "$@" ;;
  lint) run_lint "$@" ;;
  bench) run_bench "$@" ;;
  *) echo "usage: $0 demo|test|unit|integration|molecule|sanity|lint|bench" >&2; exit 2 ;;
esac
