#!/usr/bin/env bash
# How the fleet report's chart library was vendored (plugins/module_utils/_report/uplot/): uPlot, MIT licensed, from
# the npm registry with npm's own client. Re-run to refresh it; bump VERSION and SHA256 together (the digest is the
# one npm's tarball had when it was vendored; the registry's own integrity check runs inside `npm pack` too).
#   bash tools/vendor_uplot.sh
set -euo pipefail

VERSION=1.6.32
SHA256=4b8a8191e425658e3ea8c8c1314b0fc679c861ee3a1af2b20c7b16ba50b5133d

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dest="$repo/plugins/module_utils/_report/uplot"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

(cd "$work" && npm pack --silent "uplot@$VERSION" >/dev/null)
echo "$SHA256  $work/uplot-$VERSION.tgz" | sha256sum --check --quiet
tar -xzf "$work/uplot-$VERSION.tgz" -C "$work"
mkdir -p "$dest"
cp "$work/package/dist/uPlot.iife.min.js" "$work/package/dist/uPlot.min.css" "$work/package/LICENSE" "$dest/"
echo "uPlot $VERSION -> $dest"
