#!/bin/sh
# setup-kernel.sh — fetch and unpack the Debian cloud kernel the VM tests boot.
#
# Resolves the kernel package the metapackage linux-image-cloud-amd64 currently depends on
# (e.g. linux-image-6.1.0-56-cloud-amd64), downloads that one .deb with `apt-get download`
# and unpacks it with `dpkg-deb -x` into $CLOUDLUKS_VM_DIR (default /var/cache/cloudluks-vm),
# giving boot/vmlinuz-<ver> and lib/modules/<ver>/kernel/. Nothing is installed on the host.
# Idempotent: when that kernel is already unpacked it does nothing.
#
# Options:
#   --deb FILE   unpack this already downloaded .deb instead of downloading
#   --print      print the kernel directory and exit (no download)
#
# Needs: apt-get, apt-cache, dpkg-deb (all part of a Debian base system). Runs as any user that
# can write the target directory; `apt-get update` is attempted only when apt has no package
# lists and we are root.
set -eu

dir=${CLOUDLUKS_VM_DIR:-/var/cache/cloudluks-vm}
deb=
case "${1:-}" in
--deb) deb=${2:?--deb needs a file} ;;
--print) echo "$dir"; exit 0 ;;
"") ;;
*) echo "usage: $0 [--deb FILE | --print]" >&2; exit 2 ;;
esac

unpacked() {
	# $1 = kernel release, e.g. 6.1.0-56-cloud-amd64
	[ -f "$dir/boot/vmlinuz-$1" ] && [ -d "$dir/lib/modules/$1/kernel" ]
}

mkdir -p "$dir"

if [ -n "$deb" ]; then
	pkg=$(dpkg-deb -f "$deb" Package)
	rel=${pkg#linux-image-}
	if unpacked "$rel"; then
		echo "setup-kernel: $rel already unpacked in $dir"
		exit 0
	fi
	dpkg-deb -x "$deb" "$dir"
	unpacked "$rel" || { echo "setup-kernel: $deb did not contain boot/vmlinuz-$rel" >&2; exit 1; }
	echo "setup-kernel: unpacked $rel into $dir"
	exit 0
fi

resolve() {
	apt-cache depends linux-image-cloud-amd64 2>/dev/null |
		awk '$1 == "Depends:" && $2 ~ /^linux-image-.*-cloud-amd64$/ { print $2; exit }'
}

pkg=$(resolve || true)
if [ -z "$pkg" ] && [ "$(id -u)" = 0 ]; then
	apt-get update -qq
	pkg=$(resolve || true)
fi
if [ -z "$pkg" ]; then
	echo "setup-kernel: cannot resolve the dependency of linux-image-cloud-amd64 (run apt-get update?)" >&2
	exit 1
fi
rel=${pkg#linux-image-}

if unpacked "$rel"; then
	echo "setup-kernel: $rel already unpacked in $dir"
	exit 0
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# _apt must be able to write the download directory, else apt warns and downloads as root.
chmod 0755 "$tmp"
if id _apt >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then chown _apt "$tmp"; fi
(cd "$tmp" && apt-get download -q "$pkg")
set -- "$tmp"/"$pkg"_*.deb
[ -f "$1" ] || { echo "setup-kernel: apt-get download produced no .deb for $pkg" >&2; exit 1; }
dpkg-deb -x "$1" "$dir"
unpacked "$rel" || { echo "setup-kernel: $1 did not contain boot/vmlinuz-$rel" >&2; exit 1; }
echo "setup-kernel: unpacked $rel into $dir"
