#!/usr/bin/env bash
# Makes sure the services the test suite starts by itself are installable here:
# PostgreSQL server binaries (initdb, pg_ctl) for the real-PostgreSQL tests;
# iproute2 (`ip`) for the network-zone tests, which build Linux network namespaces.
# Chromium (Debian's package; never a downloaded build) for the chat UI's end-to-end tests.
# Runs before `npm test`; installs Debian packages only when something is missing.
set -euo pipefail

have_pg() {
  command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1 && return 0
  compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null
}

missing=()
have_pg || missing+=(postgresql)
command -v ip >/dev/null 2>&1 || missing+=(iproute2)
[ -x /usr/bin/chromium ] || missing+=(chromium)

[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "test setup: missing ${missing[*]}: install the Debian package(s) '${missing[*]}' (or your distribution's equivalent) and run again" >&2
  exit 1
fi
echo "test setup: installing ${missing[*]} (Debian packages)"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
