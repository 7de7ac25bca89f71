#!/usr/bin/env bash
# Entry point for the README's commands. Every verb runs scripts/setup.sh first.
#   run.sh demo      set up, then run playbooks/demo.yml against this machine
#   run.sh test      set up, then unit tests, integration tests, molecule role scenarios, the documentation site,
#                    the Galaxy import, ansible-test sanity, ansible-lint (the test bed's tests and the static checks
#                    alongside)
#   run.sh unit | integration | testbed | molecule | sanity | lint | bench   one part only (extra args go to
#                    the tool; integration is all of it, testbed only the test bed's)
#   run.sh galaxy    build the collection's tarball and import it with galaxy-importer, as Galaxy does on an upload
#                    (fails on any warning the import shows); check the execution environment files (ansible-builder)
#   run.sh bench-cluster [--hypervisors 10 --guests-each 100 --rounds 5]   the cluster scale benchmark: brings the
#                    test bed up with that many hypervisors of defined guests, times a no-change site.yml over all of
#                    them (the cluster view on) against one hypervisor's alone and against guests_cluster=false, and
#                    takes the test bed down (it refuses to start while a test bed is up)
#   run.sh docs      the documentation site into .build/docs/html (antsibull-docs from the collection's own docs and
#                    docs/docsite, Sphinx with warnings as errors, offline); fails on a broken doc
#   run.sh model [STEPS [SEED]]   the cluster's model (tests/integration/test_testbed_model.py) over a longer random
#                    sequence than the test command's 18 steps (default 120); a seed replays a printed sequence
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

# The tests on this machine's libvirtd, and those on the test bed's own daemons (tests/testbed): run.sh test runs
# the two at once.
run_integration_host() {
  section "integration tests (this machine's libvirtd)"
  python -m pytest -q --durations=15 tests/integration --ignore-glob='*/test_testbed_*'
}

run_integration_testbed() {
  section "integration tests (the test bed: three hypervisors)"
  python -m pytest -q --durations=15 -p no:cacheprovider --basetemp="${TMPDIR:-/tmp}/kvmfleet-testbed-tests" \
    tests/integration/test_testbed_*.py "$@"
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
  ansible-lint --offline --profile production "$@" || return
  section "ansible-doc renders every module"
  local m name
  for m in plugins/modules/*.py; do
    name=$(basename "$m" .py)
    ansible-doc "kvmfleet.libvirt.$name" | grep -q "kvmfleet.libvirt.$name" \
      || { echo "ansible-doc cannot render kvmfleet.libvirt.$name" >&2; return 1; }
    echo "ok: kvmfleet.libvirt.$name"
  done
}

# galaxy-importer and ansible-builder in a virtualenv of their own (.venv-galaxy): scripts/galaxy.sh.
run_galaxy() {
  section "ansible-galaxy collection build, galaxy-importer, ansible-builder"
  bash "$repo/scripts/galaxy.sh" "$@"
}

# Each part returns its failure (run.sh test calls them in an && list, where set -e does not stop a function).

# Role scenarios: molecule with the delegated driver against this machine's libvirtd.
run_molecule() {
  section "molecule (role scenarios)"
  local scenario role name
  for scenario in roles/*/molecule/*/molecule.yml; do
    [ -e "$scenario" ] || continue
    role=$(echo "$scenario" | cut -d/ -f2)
    name=$(basename "$(dirname "$scenario")")
    echo "-- role $role, scenario $name"
    (cd "roles/$role" && NO_COLOR=1 MOLECULE_PYTHON="$repo/.venv/bin/python" molecule test -s "$name" "$@") || return
  done
}

run_bench() {
  section "benchmarks"
  python tests/bench/run.py "$@"
}

# The model of the cluster (tests/integration/test_testbed_model.py), a longer random sequence than the test
# command's: run.sh model [STEPS [SEED]] (default 120 steps; a seed replays a sequence).
run_model() {
  section "the cluster's model: a long random sequence on the test bed"
  KVMFLEET_MODEL_STEPS=${1:-120} KVMFLEET_MODEL_SEED=${2:-} python -m pytest -q -s -p no:cacheprovider \
    --basetemp="${TMPDIR:-/tmp}/kvmfleet-model-tests" tests/integration/test_testbed_model.py
}

# The site has a page for every module, filter, inventory plugin, role and guide, each saying what it documents.
check_docs_site() {
  local html=$1 f name pages=0
  grep -q 'kvmfleet.libvirt' "$html/index.html" || { echo "docs: $html/index.html does not name the collection" >&2; return 1; }
  for f in plugins/modules/*.py plugins/filter/*.yml plugins/inventory/*.py roles/*/meta/argument_specs.yml; do
    case $f in
      plugins/modules/*) name=$(basename "$f" .py)_module ;;
      plugins/filter/*) name=$(basename "$f" .yml)_filter ;;
      plugins/inventory/*) name=$(basename "$f" .py)_inventory ;;
      roles/*) name=$(echo "$f" | cut -d/ -f2)_role ;;
    esac
    grep -q "kvmfleet.libvirt.${name%_*}" "$html/$name.html" 2>/dev/null \
      || { echo "docs: $html/$name.html is missing or does not name kvmfleet.libvirt.${name%_*}" >&2; return 1; }
    pages=$((pages + 1))
  done
  for f in docs/docsite/rst/*.rst; do
    name=$(basename "$f" .rst)
    title=$(awk 'prev != "" && /^===+$/ {print prev; exit} {prev = $0}' "$f")
    grep -qF "$title" "$html/docsite/$name.html" 2>/dev/null \
      || { echo "docs: the guide $html/docsite/$name.html is missing or lacks its title '$title'" >&2; return 1; }
    pages=$((pages + 1))
  done
  echo "documentation site: $pages pages checked"
}

# The documentation site: the plugins' and roles' docs linted, their reST written by antsibull-docs with the guides
# of docs/docsite (extra-docs.yml, links.yml, rst/), rendered by Sphinx into .build/docs/html. Any markup error,
# broken reference or Sphinx warning fails it; then the site is checked for its pages.
run_docs() {
  section "documentation site (antsibull-docs, Sphinx)"
  local out="$repo/.build/docs"
  antsibull-docs lint-collection-docs --plugin-docs --check-extra-docs-refs . || return
  rm -rf "$out/rst" "$out/html"
  mkdir -p "$out/rst"
  chmod og-w "$out/rst"  # antsibull-docs wants its destination writable by itself only
  antsibull-docs --config-file docs/docsite/sphinx/antsibull-docs.cfg collection --use-current --squash-hierarchy \
    --cleanup everything --dest-dir "$out/rst" kvmfleet.libvirt || return
  sphinx-build -q -W --keep-going -n -b html -c docs/docsite/sphinx "$out/rst" "$out/html" || return
  check_docs_site "$out/html" || return
  echo "documentation site: $out/html/index.html"
}

run_bench_cluster() {
  section "cluster benchmark (the test bed)"
  python tests/bench/run.py --cluster "$@"
}

case "$verb" in
  demo) run_demo "$@" ;;
  test)
    # Two streams that share nothing but the machine: this machine's libvirtd (unit, integration, molecule),
    # and the test bed's own daemons followed by the static checks (sanity, lint: no libvirt at all). The
    # second stream's output follows the first's.
    other_log=$(mktemp "${TMPDIR:-/tmp}/kvmfleet-stream.XXXXXX")
    (run_integration_testbed && run_sanity && run_lint) >"$other_log" 2>&1 &
    other_pid=$!
    host_status=0
    # The Galaxy import without the importer's own ansible-lint (two thirds of its time): run_lint runs ansible-lint's
    # stricter production profile on the same files; `run.sh galaxy` runs the importer's lint too.
    { run_unit && run_integration_host && run_molecule && run_docs \
        && GALAXY_IMPORTER_RUN_ANSIBLE_LINT=false run_galaxy; } || host_status=$?
    other_status=0
    wait "$other_pid" || other_status=$?
    cat "$other_log"
    rm -f "$other_log"
    [ "$host_status" -eq 0 ] || { echo "unit, integration, molecule, the docs site or the Galaxy import failed (exit $host_status)" >&2; exit "$host_status"; }
    [ "$other_status" -eq 0 ] || { echo "the test bed, sanity or lint failed (exit $other_status)" >&2; exit "$other_status"; }
    ;;
  unit) run_unit "$@" ;;
  model) run_model "$@" ;;
  integration) run_integration "$@" ;;
  testbed) run_integration_testbed "$@" ;;
  molecule) run_molecule "$@" ;;
  sanity) run_sanity "$@" ;;
  lint) run_lint "$@" ;;
  galaxy) run_galaxy "$@" ;;
  bench) run_bench "$@" ;;
  bench-cluster) run_bench_cluster "$@" ;;
  docs) run_docs ;;
  *) echo "usage: $0 demo|test|unit|integration|testbed|molecule|sanity|lint|bench|bench-cluster|model|docs|galaxy" >&2; exit 2 ;;
esac
