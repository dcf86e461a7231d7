#!/usr/bin/env bash
# Installs Debian's chromium package, which the browser tests in e2e/ drive
# through the DevTools protocol, unless a Chromium is already installed.
# Safe to run again. VISITRELAY_CHROMIUM names another binary to use.
set -euo pipefail

browser="${VISITRELAY_CHROMIUM:-/usr/bin/chromium}"
if [[ -x "$browser" ]]; then
	echo "ensure-chromium: found $browser"
	exit 0
fi
if [[ -n "${VISITRELAY_CHROMIUM:-}" ]]; then
	echo "ensure-chromium: VISITRELAY_CHROMIUM=$VISITRELAY_CHROMIUM is not an executable; point it at a Chromium binary or unset it" >&2
	exit 1
fi
if ! command -v apt-get >/dev/null; then
	echo "ensure-chromium: no $browser and no apt-get; install Chromium and set VISITRELAY_CHROMIUM to its binary" >&2
	exit 1
fi

sudo=()
if [[ $(id -u) -ne 0 ]]; then
	if ! command -v sudo >/dev/null; then
		echo "ensure-chromium: no $browser found; as root run: apt-get update && apt-get install -y --no-install-recommends chromium" >&2
		exit 1
	fi
	sudo=(sudo)
fi

# apt-get writes its progress to stdout, which is dropped. Errors still
# reach stderr.
"${sudo[@]}" apt-get update -qq >/dev/null
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
	apt-get install -y -qq --no-install-recommends chromium >/dev/null

if [[ ! -x "$browser" ]]; then
	echo "ensure-chromium: installed the chromium package but found no $browser" >&2
	exit 1
fi
echo "ensure-chromium: installed $("$browser" --version 2>/dev/null || echo "$browser")"
