#!/bin/sh
# Assembles the build context of packaging/Containerfile from this machine's own files, so the
# image builds offline with no base image and no RUN step:
#
#   packaging/build-image.sh [BINARY] [OUT]
#   podman build --format docker -t localhost/medianest OUT
#
# BINARY defaults to target/release/medianest, OUT to target/image. OUT receives:
#   rootfs.tar  the binary at /usr/local/bin/medianest, the shared libraries it links (from ldd),
#               Debian's CA bundle, its zoneinfo, /etc/passwd, /etc/group and /etc/nsswitch.conf
#               with the unprivileged user medianest (10001:10001), and /tmp; all owned by root
#   data.tar    the empty /data volume, owned by 10001:10001
#   Containerfile, Dockerfile  copies of packaging/Containerfile
#
# For another architecture (arm64: a binary built with --target aarch64-unknown-linux-gnu), set
# LIBS_FROM to a directory holding that architecture's libraries, e.g. the `dpkg -x` of
# libc6:arm64 and libgcc-s1:arm64 (see the README, "Install"): the libraries the binary names
# (readelf -d) and the dynamic loader are then taken from there instead of from ldd.
set -eu
# Files in the image are world-readable whatever the builder's umask: uid 10001 runs them.
umask 022

here=$(cd "$(dirname "$0")" && pwd)
binary=${1:-target/release/medianest}
out=${2:-target/image}
uid=10001

[ -x "$binary" ] || { echo "build-image: no executable $binary (cargo build --release)" >&2; exit 1; }
[ -f /etc/ssl/certs/ca-certificates.crt ] || { echo "build-image: no /etc/ssl/certs/ca-certificates.crt (apt-get install ca-certificates)" >&2; exit 1; }
[ -d /usr/share/zoneinfo ] || { echo "build-image: no /usr/share/zoneinfo (apt-get install tzdata)" >&2; exit 1; }

mkdir -p "$out"
root=$(mktemp -d "$out/rootfs.XXXXXX")
chmod 0755 "$root"
trap 'rm -rf "$root"' EXIT

# The binary and what it links.
install -D -m 0755 "$binary" "$root/usr/local/bin/medianest"
copy_lib() { # copies $1 to the same path in the root, following symbolic links
    mkdir -p "$root$(dirname "$1")"
    cp -L "$1" "$root$1"
}
if [ -n "${LIBS_FROM:-}" ]; then
    for name in $(readelf -d "$binary" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p') \
        $(readelf -l "$binary" | sed -n 's/.*interpreter: \(.*\)\]/\1/p' | xargs -n1 basename); do
        found=$(find "$LIBS_FROM" -name "$name" \( -type f -o -type l \) | head -n 1)
        [ -n "$found" ] || { echo "build-image: $name not in $LIBS_FROM" >&2; exit 1; }
        dest=${found#"$LIBS_FROM"}
        mkdir -p "$root$(dirname "$dest")"
        cp -L "$found" "$root$dest"
    done
    # The loader is looked for at the path the binary names (/lib/ld-linux-aarch64.so.1).
    interp=$(readelf -l "$binary" | sed -n 's/.*interpreter: \(.*\)\]/\1/p')
    if [ ! -e "$root$interp" ]; then
        mkdir -p "$root$(dirname "$interp")"
        cp -L "$(find "$LIBS_FROM" -name "$(basename "$interp")" | head -n 1)" "$root$interp"
    fi
else
    # "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" and "/lib64/ld-linux-x86-64.so.2 (0x...)"
    for lib in $(ldd "$binary" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }'); do
        copy_lib "$lib"
    done
fi

# Name service: users and groups from files, host names from /etc/hosts (which the container
# runtime writes, with the compose service names) and then DNS (its /etc/resolv.conf). glibc 2.34
# and later has the files and dns modules built in, so no libnss_*.so is needed.
mkdir -p "$root/etc"
cat > "$root/etc/nsswitch.conf" <<'EOF'
passwd: files
group:  files
shadow: files
hosts:  files dns
EOF
cat > "$root/etc/passwd" <<EOF
root:x:0:0:root:/root:/nonexistent
medianest:x:$uid:$uid:MediaNest:/data:/nonexistent
nobody:x:65534:65534:nobody:/nonexistent:/nonexistent
EOF
cat > "$root/etc/group" <<EOF
root:x:0:
medianest:x:$uid:
nogroup:x:65534:
EOF

# TLS roots: ureq uses the webpki roots compiled into the binary; the bundle is for anything that
# reads the system one (SSL_CERT_FILE).
install -D -m 0644 /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"

# Time zones for TZ (the "right/" leap-second variants left out).
mkdir -p "$root/usr/share/zoneinfo"
(cd /usr/share/zoneinfo && tar -cf - --exclude=./right .) | tar -xf - -C "$root/usr/share/zoneinfo"
ln -sf /usr/share/zoneinfo/Etc/UTC "$root/etc/localtime"

mkdir -p "$root/tmp"
chmod 1777 "$root/tmp"

tar --numeric-owner --owner=0 --group=0 --sort=name -C "$root" -cf "$out/rootfs.tar" .
empty=$(mktemp -d "$out/data.XXXXXX")
mkdir -m 0750 "$empty/data"
tar --numeric-owner --owner=$uid --group=$uid -C "$empty" -cf "$out/data.tar" data
rmdir "$empty/data" "$empty"
# Under both names: podman reads Containerfile, docker Dockerfile.
cp "$here/Containerfile" "$out/Containerfile"
cp "$here/Containerfile" "$out/Dockerfile"
echo "build-image: $out/rootfs.tar ($(du -k "$out/rootfs.tar" | cut -f1) KiB) and $out/data.tar; next: podman build --format docker -t localhost/medianest $out"
