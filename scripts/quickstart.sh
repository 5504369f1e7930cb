#!/usr/bin/env bash
# Quick start on a fresh Debian machine, as root: installs every system package and npm dependency
# Ambit needs, then brings up the demo. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v npm >/dev/null 2>&1; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm
fi
bash scripts/install-system-packages.sh
npm ci --no-audit --no-fund
npx ambit demo
