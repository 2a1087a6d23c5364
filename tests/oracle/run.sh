#!/bin/sh
# Differential test of Caravan's HCL parser against the npm oracle @cdktf/hcl2json
# (shared/reference/hcl.md §7). Installs the package into tests/oracle/node_modules
# (gitignored) on first use; skips (exit 77) when node/npm or the registry is unavailable.
here=$(cd "$(dirname "$0")" && pwd)
tool=${CV_HCL2JSON:-$(pwd)/tests/oracle/cv-hcl2json}
[ -x "$tool" ] || { echo "SKIP: $tool not built"; exit 77; }
command -v node >/dev/null 2>&1 || { echo "SKIP: node not installed"; exit 77; }
if [ ! -d "$here/node_modules/@cdktf/hcl2json" ]; then
    command -v npm >/dev/null 2>&1 || { echo "SKIP: npm not installed"; exit 77; }
    (cd "$here" && timeout 120 npm install --no-save --no-package-lock --prefix . \
        @cdktf/hcl2json@0.21.0 >/dev/null 2>&1) || { echo "SKIP: npm install failed"; exit 77; }
fi
NODE_PATH="$here/node_modules" exec timeout 60 node "$here/compare.js" "$tool" \
    "$here"/corpus/*.hcl "$here"/../jobspec/*.hcl
