#!/usr/bin/env bash
# axe-core from npm, for the browser tests' accessibility checks: writes target/axe/axe.min.js
# (the tests read it there, or from LENDING_AXE_JS). The tarball's SHA-256 is pinned.
set -euo pipefail
cd "$(dirname "$0")/.."
version=4.11.0
sha256=39bed7d72308f6d620789c169d699bfd7e8da80f65b545821a6b2215c3e83107
dest="${CARGO_TARGET_DIR:-target}/axe"
if [ -f "$dest/axe.min.js" ] && [ "$(cat "$dest/version" 2>/dev/null)" = "$version" ]; then
    exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "axe-core@$version" >/dev/null)
echo "$sha256  $tmp/axe-core-$version.tgz" | sha256sum -c --quiet
tar -xzf "$tmp/axe-core-$version.tgz" -C "$tmp"
mkdir -p "$dest"
cp "$tmp/package/axe.min.js" "$dest/axe.min.js"
echo "$version" >"$dest/version"
echo "axe-core $version in $dest/axe.min.js"
