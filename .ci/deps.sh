#!/usr/bin/env bash
# Installs what xdplb's build, tests and lab need on a Debian machine that
# starts with only Go and gcc. Each package is installed only when missing,
# so a second run is quick and changes nothing.
set -euo pipefail

# command-or-file  debian-package
wanted=(
	"clang-14 clang-14"
	"llvm-strip llvm"
	"/usr/include/bpf/bpf_helpers.h libbpf-dev"
	"/usr/include/linux/bpf.h linux-libc-dev"
	"bpftool bpftool"
	"ip iproute2"
	"ethtool ethtool"
	"nft nftables"
	"keepalived keepalived"
	"tcpdump tcpdump"
	"curl curl"
)

missing=()
for pair in "${wanted[@]}"; do
	what=${pair% *}
	pkg=${pair#* }
	if [[ $what == /* ]]; then
		[[ -e $what ]] && continue
	else
		command -v "$what" >/dev/null 2>&1 && continue
		# sbin tools are not on a non-root PATH; look there too.
		[[ -x /usr/sbin/$what || -x /sbin/$what ]] && continue
	fi
	missing+=("$pkg")
done

if ((${#missing[@]} == 0)); then
	echo "deps: everything is installed"
	exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
	echo "deps: missing ${missing[*]}; run 'sudo make deps'" >&2
	# From `make test` as a normal user: go on, the tests that need these
	# tools skip (or fail under XDPLB_REQUIRE_PRIVILEGED=1).
	[[ ${1:-} == --warn-only ]] && exit 0
	exit 1
fi

echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
