#!/usr/bin/env bash
# Installs the npm packages of the Node-based end-to-end tests (the real
# socket.io-client), from their lock files.
set -euo pipefail
cd "$(dirname "$0")/.."
for dir in test/*/; do
  [ -f "$dir/package.json" ] || continue
  echo "npm install in $dir"
  if [ -f "$dir/package-lock.json" ]; then
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
  else
    (cd "$dir" && npm install --no-audit --no-fund --loglevel=error)
  fi
done
