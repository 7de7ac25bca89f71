#!/usr/bin/env bash
# What Galaxy does with the collection on an upload, offline: build the tarball (ansible-galaxy collection build) into
# .build/galaxy and import it with galaxy-importer (ansible-doc on every plugin, the role READMEs and metadata,
# ansible-lint as Galaxy runs it). Fails on an import error and on every warning the import log would show users.
# Then the execution environment files: the built collection installed, ansible-builder's introspection must find
# its Python and system packages, and tests/galaxy/execution-environment.yml must make a build context.
# The tools live in .venv-galaxy (galaxy-importer pins its own ansible-core and ansible-lint), made on demand from
# tests/galaxy/requirements.txt. Called by `scripts/run.sh galaxy`.
# GALAXY_IMPORTER_RUN_ANSIBLE_LINT=false leaves out the importer's ansible-lint (about two thirds of the time; `run.sh
# lint` runs ansible-lint's production profile on the checkout too).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
venv="$repo/.venv-galaxy"
out="$repo/.build/galaxy"
reqs="$repo/tests/galaxy/requirements.txt"
start=$SECONDS

fail() { echo "galaxy: $*" >&2; exit 1; }

want=$(sha256sum "$reqs" | cut -d' ' -f1)
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$venv/.requirements.sha" 2>/dev/null)" != "$want" ]; then
  echo "creating $venv from tests/galaxy/requirements.txt"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q -r "$reqs"
  echo "$want" > "$venv/.requirements.sha"
fi
# The importer calls ansible-doc and ansible-lint by name: its own.
export PATH="$venv/bin:$PATH"
export GALAXY_IMPORTER_CONFIG="$repo/tests/galaxy/galaxy-importer.cfg"

rm -rf "$out"
mkdir -p "$out"
ansible-galaxy collection build --output-path "$out" "$repo"
tarball=$(find "$out" -maxdepth 1 -name '*.tar.gz')
echo "tarball: ${tarball#"$repo/"} ($(du -k "$tarball" | cut -f1) KiB, $(tar -tzf "$tarball" | wc -l) entries)"

# The importer writes importer_result.json into its working directory.
log="$out/importer.log"
status=0
(cd "$out" && python -m galaxy_importer.main "$tarball") >"$log" 2>&1 || status=$?
grep -v '^Loading ' "$log" || true
[ "$status" -eq 0 ] || fail "the import failed (galaxy-importer exit $status): $log"
if grep -qE '^(WARNING|ERROR):' "$log"; then
  fail "the import log shows these to users: $(grep -cE '^(WARNING|ERROR):' "$log") warnings or errors above"
fi

# The execution environment: the collection as an EE installs it, and its dependencies as ansible-builder finds them.
ANSIBLE_COLLECTIONS_PATH="$out/collections" \
  ansible-galaxy collection install --offline --force -p "$out/collections" "$tarball" >/dev/null
ansible-builder introspect --sanitize "$out/collections" >"$out/introspect.yml"
cat "$out/introspect.yml"
for dep in "'libvirt-python" "'lxml" "'pycdlib" "'libvirt-dev " "'libvirt-devel "; do
  grep -qF -- "- $dep" "$out/introspect.yml" || fail "ansible-builder does not find ${dep#\'} in the collection's EE files"
done
ansible-builder create -f tests/galaxy/execution-environment.yml -c "$out/ee-context" >/dev/null
[ -s "$out/ee-context/Containerfile" ] || [ -s "$out/ee-context/Dockerfile" ] || fail "ansible-builder create wrote no build context"
echo "ok: built, imported without warnings, EE files found ($((SECONDS - start)) s)"
