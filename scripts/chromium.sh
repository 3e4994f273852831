#!/usr/bin/env bash
# Installs Debian's Chromium for the web console's browser tests, when it is
# not there yet, and prints its path. Needs root (or sudo) and Debian's
# package mirror; nothing downloads a browser of its own.
set -euo pipefail
for c in chromium chromium-browser; do
	if p="$(command -v "$c")"; then
		echo "$p"
		exit 0
	fi
done
sudo=""
if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq >&2
$sudo apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >&2
command -v chromium
