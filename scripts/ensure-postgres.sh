#!/usr/bin/env bash
# Installs the PostgreSQL server binaries (initdb, postgres) that the tests
# and the demo run, unless they are already installed. Safe to run again.
# It starts, stops and reconfigures no server itself, but on a machine
# without PostgreSQL the Debian package may create and start its default
# cluster.
set -euo pipefail

# find_initdb prints the path of the initdb in PG_BINDIR when that is set,
# else of the newest one in /usr/lib/postgresql/*/bin, or nothing.
find_initdb() {
	if [[ -n "${PG_BINDIR:-}" ]]; then
		if [[ -x "$PG_BINDIR/initdb" ]]; then
			echo "$PG_BINDIR/initdb"
		fi
		return 0
	fi
	local candidates=(/usr/lib/postgresql/*/bin/initdb)
	if [[ -x "${candidates[0]}" ]]; then
		printf '%s\n' "${candidates[@]}" | sort -V | tail -n 1
	fi
}

found=$(find_initdb)
if [[ -n "$found" ]]; then
	echo "ensure-postgres: found $found"
	exit 0
fi
if [[ -n "${PG_BINDIR:-}" ]]; then
	echo "ensure-postgres: PG_BINDIR=$PG_BINDIR has no initdb; point it at a PostgreSQL bin directory or unset it" >&2
	exit 1
fi
if ! command -v apt-get >/dev/null; then
	echo "ensure-postgres: no initdb in /usr/lib/postgresql/*/bin and no apt-get; install the PostgreSQL server and set PG_BINDIR to its bin directory" >&2
	exit 1
fi

sudo=()
if [[ $(id -u) -ne 0 ]]; then
	if ! command -v sudo >/dev/null; then
		echo "ensure-postgres: no initdb found; as root run: apt-get update && apt-get install -y --no-install-recommends postgresql" >&2
		exit 1
	fi
	sudo=(sudo)
fi

# apt-get writes its progress to stdout, which is dropped. Errors still
# reach stderr.
# NOTE: this install branch has not been run on a machine without PostgreSQL.
"${sudo[@]}" apt-get update -qq >/dev/null
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
	apt-get install -y -qq --no-install-recommends postgresql >/dev/null

found=$(find_initdb)
if [[ -z "$found" ]]; then
	echo "ensure-postgres: installed the postgresql package but found no initdb in /usr/lib/postgresql/*/bin" >&2
	exit 1
fi
echo "ensure-postgres: installed PostgreSQL, using $found"
