#!/usr/bin/env bash
# newman (Postman's CLI runner) for the newman gate and its tests, installed into the
# repository's git-ignored node_modules/ (no package.json or lock file is written).
# Idempotent: does nothing when node_modules/.bin/newman already is newman 6.
set -euo pipefail
cd "$(dirname "$0")/.."
want_major=6
bin=node_modules/.bin/newman
if [[ -x $bin ]] && [[ $("$bin" --version 2>/dev/null) == "$want_major".* ]]; then
  exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
  echo "install-newman.sh: npm is missing; run scripts/install-system-deps.sh first" >&2
  exit 1
fi
npm install --prefix "$PWD" --no-save --no-package-lock --no-audit --no-fund \
  --loglevel=error "newman@$want_major"
"$bin" --version >/dev/null
