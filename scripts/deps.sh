#!/bin/sh
# deps.sh [PACKAGE...] - make sure the Debian packages herald needs to build
# and test (and any named) are installed. As root, install the missing ones
# with apt-get; otherwise print the exact command and fail.
set -eu

pkgs="build-essential cmake pkg-config libssl-dev liblmdb-dev libpcre2-dev
zlib1g-dev libcrypt-dev python3 python3-pytest openssl swaks curl fetchmail fail2ban
mandoc debhelper lintian logrotate isync offlineimap3 neomutt
libunbound-dev dns-root-data knot ldnsutils python3-dnslib opendkim-tools"
# (libunbound-dev and dns-root-data build and run lib/mail/dns.c; knot,
# ldnsutils and python3-dnslib are the DNS servers of t/integration;
# opendkim-tools checks herald's DKIM signatures in test_dkim.py)
# more for one target, e.g. "scripts/deps.sh clang libclang-rt-14-dev"
pkgs="$pkgs $*"

missing=""
for p in $pkgs; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
		missing="$missing $p"
	fi
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
	echo "deps: installing:$missing"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	# fail2ban (for fail2ban-regex) and fetchmail ship services: keep
	# their postinst from starting them, as a daemon left running would
	# hold the test run open; only a policy of our own is removed again
	policy=/usr/sbin/policy-rc.d
	ours=""
	if [ ! -e "$policy" ]; then
		printf '#!/bin/sh\nexit 101\n' >"$policy"
		chmod 755 "$policy"
		ours=1
	fi
	# shellcheck disable=SC2086
	apt-get install -y -qq --no-install-recommends $missing || rc=$?
	[ -n "$ours" ] && rm -f "$policy"
	exit "${rc:-0}"
else
	echo "deps: missing packages. Run as root:" >&2
	echo "  apt-get install -y$missing" >&2
	exit 1
fi
