#!/usr/bin/env bash
# Install Debian's chromium (for the browser tests) when /usr/bin/chromium is missing; quick when it is there.
# Playwright drives this browser: `playwright install` downloads its own build and fails on Mesa's machines.
set -euo pipefail

CHROMIUM=/usr/bin/chromium
if [ -x "$CHROMIUM" ]; then
  exit 0
fi
SUDO=()
if [ "$(id -u)" != "0" ]; then
  command -v sudo >/dev/null || { echo "install-chromium: $CHROMIUM is missing; run as root or install the 'chromium' package" >&2; exit 1; }
  SUDO=(sudo)
fi
echo "Installing Chromium (Debian package) for the browser tests..."
APT=("${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -qq -o Dpkg::Use-Pty=0)
LOG="$(mktemp)"
trap 'rm -f "$LOG"' EXIT
run() { "$@" >>"$LOG" 2>&1 || { cat "$LOG" >&2; return 1; }; }
run "${APT[@]}" update || { sleep 5; run "${APT[@]}" update; }
# No recommends (upower, udev, GL drivers...): headless runs need none; fonts so pages render as people see them.
run "${APT[@]}" install -y --no-install-recommends chromium fonts-liberation fonts-dejavu-core
"$CHROMIUM" --version 2>/dev/null  # (its Debian launcher may warn about /dev/shm on stderr: harmless)
