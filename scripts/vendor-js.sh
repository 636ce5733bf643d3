#!/usr/bin/env bash
# Regenerates controller/http/static/vendor/: the dashboard's JavaScript libraries,
# committed so the page loads nothing from another origin and the wheel needs no
# network. The versions are pinned here; npm resolves them from the registry it is
# configured with into a throw-away directory, and this script copies the built files
# and their licences, then writes vendor/VERSIONS: per library its name, version and
# the tarball integrity npm recorded in package-lock.json, then one line per copied
# file with its sha256 (tests/controller/http/test_dashboard_vendor.py checks those).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

CYTOSCAPE_VERSION=3.34.4
UPLOT_VERSION=1.6.32

dest=controller/http/static/vendor
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

cat >"$work/package.json" <<JSON
{
  "name": "meshplane-dashboard-vendor",
  "private": true,
  "dependencies": {
    "cytoscape": "$CYTOSCAPE_VERSION",
    "uplot": "$UPLOT_VERSION"
  }
}
JSON
# --ignore-scripts: the packages' install scripts are not needed to copy built files.
(cd "$work" && npm install --ignore-scripts --no-audit --no-fund --silent)

rm -rf "$dest"
mkdir -p "$dest/LICENSES"
copy() { # package-relative source, destination name under vendor/
    cp "$work/node_modules/$1" "$dest/$2"
}
copy cytoscape/dist/cytoscape.min.js cytoscape.min.js
copy cytoscape/LICENSE LICENSES/cytoscape.LICENSE
copy uplot/dist/uPlot.iife.min.js uPlot.iife.min.js
copy uplot/dist/uPlot.min.css uPlot.min.css
copy uplot/LICENSE LICENSES/uplot.LICENSE

# VERSIONS: "package <name> <version> <integrity>" lines from the lock npm wrote,
# then "file <sha256> <path under vendor/>" lines for every file copied.
node - "$work/package-lock.json" "$dest" >"$dest/VERSIONS" <<'JS'
const fs = require("fs");
const crypto = require("crypto");
const path = require("path");
const [lockPath, dest] = process.argv.slice(2);
const lock = JSON.parse(fs.readFileSync(lockPath, "utf8"));
const out = ["# Written by scripts/vendor-js.sh; do not edit (re-run the script)."];
for (const name of ["cytoscape", "uplot"]) {
  const entry = lock.packages[`node_modules/${name}`];
  out.push(`package ${name} ${entry.version} ${entry.integrity}`);
}
const walk = (dir) => fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
  e.isDirectory() ? walk(path.join(dir, e.name)) : [path.join(dir, e.name)]);
for (const file of walk(dest).sort()) {
  const rel = path.relative(dest, file);
  if (rel === "VERSIONS") continue;
  const sha = crypto.createHash("sha256").update(fs.readFileSync(file)).digest("hex");
  out.push(`file ${sha} ${rel}`);
}
process.stdout.write(out.join("\n") + "\n");
JS
echo "vendor-js: wrote $dest ($(grep -c '^file' "$dest/VERSIONS") files)" >&2
