#!/usr/bin/env bash
# System packages the full test suite uses (CI runs as root on Debian). Tests that need one of
# these skip with a reason when it is missing, so `make test` still works without this script.
# Uses the machine's own apt configuration: no mirror is named here.
set -euo pipefail

APT_PACKAGES=(
  # one package per line, with the tests that need it
)

if [ "${#APT_PACKAGES[@]}" -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "setup_system: not root, skipping apt-get install of: ${APT_PACKAGES[*]}" >&2
  exit 0
fi
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
