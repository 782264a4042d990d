#!/usr/bin/env bash
# Build the Debian package of mod_wsgi-rs: the module, its a2enmod files and
# wsgi-express, installed into Debian's paths.
#
#   scripts/build-deb.sh                 # cargo build --release, then the .deb
#   scripts/build-deb.sh --out DIR       # write the .deb into DIR (default: the repository)
#   scripts/build-deb.sh --debug         # package the debug build instead
#   scripts/build-deb.sh --no-build      # package what cargo built already
#
# It writes mod-wsgi-rs_<version>-<revision>_<arch>.deb: <version> is
# Cargo.toml's, <arch> is `dpkg --print-architecture`. Then, as root:
#
#   apt-get install ./mod-wsgi-rs_*.deb && a2enmod wsgi_rs
#
# Uses only dpkg-deb and dpkg-shlibdeps (dpkg-dev), binutils and gzip
# (scripts/install-deps.sh installs them); needs no root and no fakeroot.
#
# Environment:
#   DEB_REVISION=1        the Debian revision
#   DEBFULLNAME, DEBEMAIL the Maintainer field, "$DEBFULLNAME <$DEBEMAIL>"
#                         (default: the repository's maintainers address)
#   CARGO_TARGET_DIR      where cargo builds (default: target/)
set -euo pipefail
umask 022

die() { printf 'build-deb.sh: error: %s\n' "$*" >&2; exit 1; }
step() { printf '==> %s\n' "$*"; }

usage() {
    sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
}

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=$repo
profile=release
build=1
while [ $# -gt 0 ]; do
    case $1 in
        --out) [ $# -ge 2 ] || die "--out needs a directory"; out=$2; shift ;;
        --out=*) out=${1#--out=} ;;
        --debug) profile=debug ;;
        --no-build) build=0 ;;
        -h|--help) usage; exit 0 ;;
        *) die "unknown argument '$1' (try --help)" ;;
    esac
    shift
done

pkg=mod-wsgi-rs
meta=$repo/packaging/deb
maintainer_default="mod_wsgi-rs maintainers <maintainers@users.noreply.b-seed-fdad4244.example>"

for tool in dpkg-deb dpkg-shlibdeps readelf strip gzip md5sum apxs; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool not found: run scripts/install-deps.sh
  (it installs dpkg-dev, binutils and apache2-dev)."
done
cargo=$(command -v cargo 2>/dev/null || true)
[ -n "$cargo" ] || { [ -x "$HOME/.cargo/bin/cargo" ] && cargo=$HOME/.cargo/bin/cargo; } ||
    die "cargo not found: install Rust (https://rustup.rs)."

# --- Version, architecture --------------------------------------------------
upstream=$(sed -n '/^\[package\]/,/^\[/s/^version *= *"\([^"]*\)".*/\1/p' "$repo/Cargo.toml" | head -n 1)
[ -n "$upstream" ] || die "no version in $repo/Cargo.toml"
version=$upstream-${DEB_REVISION:-1}
arch=$(dpkg --print-architecture)

# --- Build ------------------------------------------------------------------
target_dir=${CARGO_TARGET_DIR:-$repo/target}
case $target_dir in /*) ;; *) target_dir=$repo/$target_dir ;; esac
built=$target_dir/$profile
if [ "$build" = 1 ]; then
    step "Building ($profile)"
    flags=()
    [ "$profile" = release ] && flags+=(--release)
    (cd "$repo" && PYO3_PYTHON=${PYO3_PYTHON:-/usr/bin/python3} "$cargo" build "${flags[@]}" --lib --bin wsgi-express)
fi
so=$built/libmod_wsgi_rs.so
exe=$built/wsgi-express
[ -f "$so" ] || die "$so not found (build it, or drop --no-build)."
[ -f "$exe" ] || die "$exe not found (build it, or drop --no-build)."

# --- Stage the file tree ----------------------------------------------------
work=$target_dir/debian
stage=$work/$pkg
rm -rf "$stage"
mkdir -p "$stage/DEBIAN"
modules_dir=usr/lib/apache2/modules
avail=etc/apache2/mods-available
doc=usr/share/doc/$pkg
install -d -m 755 "$stage/$modules_dir" "$stage/usr/bin" "$stage/$avail" "$stage/$doc/examples"

step "Staging $stage"
# As dh_strip does: the debug info (release builds keep it, see Cargo.toml)
# does not belong in the package. --strip-unneeded keeps the dynamic
# symbol table, so Apache still finds wsgi_module.
strip --remove-section=.comment --remove-section=.note --strip-unneeded \
    -o "$stage/$modules_dir/mod_wsgi_rs.so" "$so"
chmod 644 "$stage/$modules_dir/mod_wsgi_rs.so"
strip --remove-section=.comment --remove-section=.note -o "$stage/usr/bin/wsgi-express" "$exe"
chmod 755 "$stage/usr/bin/wsgi-express"
readelf --dyn-syms -W "$stage/$modules_dir/mod_wsgi_rs.so" | grep -qw wsgi_module ||
    die "the stripped module does not export wsgi_module."

install -m 644 "$repo/conf/wsgi_rs.load" "$repo/conf/wsgi_rs.conf" "$stage/$avail/"
grep -q '^# Conflicts: wsgi$' "$stage/$avail/wsgi_rs.load" ||
    die "conf/wsgi_rs.load lost its '# Conflicts: wsgi' line."
grep -q "^LoadModule wsgi_module /$modules_dir/mod_wsgi_rs.so\$" "$stage/$avail/wsgi_rs.load" ||
    die "conf/wsgi_rs.load does not load /$modules_dir/mod_wsgi_rs.so."

# Documentation, compressed as Debian policy asks for files over 4 kB.
gzip -9n <"$repo/README.md" >"$stage/$doc/README.md.gz"
install -m 644 "$meta/README.Debian" "$stage/$doc/README.Debian"
install -m 644 "$repo/conf/samples/"*.conf "$stage/$doc/examples/"

# copyright: the crates linked into the binaries, from cargo's own view.
crates=$(cd "$repo" && "$cargo" tree --offline -e normal,no-proc-macro --prefix none \
    -f '{p} {l}' 2>/dev/null | sed 's/ (.*)//' | sort -u) ||
    die "cargo tree failed (are the dependencies fetched?)."
[ -n "$crates" ] || die "cargo tree listed no crates."
while read -r name ver lic; do
    [ "$name" = mod_wsgi_rs ] && continue
    case $lic in
        "MIT OR Apache-2.0"|"Apache-2.0 OR MIT"|MIT/Apache-2.0|Apache-2.0/MIT|MIT|Apache-2.0) ;;
        *) die "crate $name $ver is licensed '$lic': packaging/deb/copyright.in covers only MIT and Apache-2.0; add its license." ;;
    esac
done <<<"$crates"
crate_lines=$(grep -v '^mod_wsgi_rs ' <<<"$crates" | sed 's/^/  /')
CRATES=$crate_lines awk '$0 == "@CRATES@" { print ENVIRON["CRATES"]; next } { print }' \
    "$meta/copyright.in" >"$stage/$doc/copyright"
chmod 644 "$stage/$doc/copyright"

maintainer=$maintainer_default
if [ -n "${DEBFULLNAME:-}" ] && [ -n "${DEBEMAIL:-}" ]; then
    maintainer="$DEBFULLNAME <$DEBEMAIL>"
fi

# changelog.Debian: one entry for this build, dated by the commit it was
# built from (so that two builds of one commit give the same file).
if commit=$(git -C "$repo" rev-parse --short=12 HEAD 2>/dev/null); then
    date=$(git -C "$repo" log -1 --format=%cD HEAD)
    what="Built from mod_wsgi-rs commit $commit"
    git -C "$repo" diff --quiet HEAD 2>/dev/null || what="$what (with uncommitted changes)"
else
    date=$(date -R)
    what="Built from a mod_wsgi-rs source tree without git history"
fi
{
    printf '%s (%s) unstable; urgency=medium\n\n' "$pkg" "$version"
    printf '  * %s.\n\n' "$what"
    printf ' -- %s  %s\n' "$maintainer" "$date"
} | gzip -9n >"$stage/$doc/changelog.Debian.gz"

# --- Control files ----------------------------------------------------------
install -m 755 "$meta/prerm" "$meta/postrm" "$stage/DEBIAN/"
printf '/%s\n' "$avail/wsgi_rs.conf" "$avail/wsgi_rs.load" >"$stage/DEBIAN/conffiles"

# Apache's module ABI: the virtual package apache2-bin provides for the
# module magic number the module was compiled against, plus the apache2-bin
# floor that Debian's dh_apache2 adds to every module package.
mmn=$(sed -n 's/^#define MODULE_MAGIC_NUMBER_MAJOR \([0-9]*\).*/\1/p' "$(apxs -q INCLUDEDIR)/ap_mmn.h" | head -n 1)
[ -n "$mmn" ] || die "no MODULE_MAGIC_NUMBER_MAJOR in $(apxs -q INCLUDEDIR)/ap_mmn.h"

# Shared libraries (libc6, the libpython3.X the module links, ...), as
# dpkg-shlibdeps computes them from the binaries. It wants a debian/control
# to read; give it one of its own. Apache's symbols are resolved by the
# server at load time, so "undefined symbol" warnings about them are
# expected and dropped.
shl=$work/shlibdeps
rm -rf "$shl"
mkdir -p "$shl/debian"
printf 'Source: %s\n\nPackage: %s\nArchitecture: any\n' "$pkg" "$pkg" >"$shl/debian/control"
shlibs=$(cd "$shl" && dpkg-shlibdeps -O --warnings=0 \
    "$stage/$modules_dir/mod_wsgi_rs.so" "$stage/usr/bin/wsgi-express") ||
    die "dpkg-shlibdeps failed."
shlibs=$(sed -n 's/^shlibs:Depends=//p' <<<"$shlibs")
[ -n "$shlibs" ] || die "dpkg-shlibdeps found no dependencies."

# The libpython the module was linked against must be among them: it is the
# Python the module embeds.
libpython=$(readelf -d "$stage/$modules_dir/mod_wsgi_rs.so" |
    sed -n 's/.*Shared library: \[\(libpython[0-9]*\.[0-9]*\)[^]]*\].*/\1/p' | head -n 1)
[ -n "$libpython" ] || die "the module does not link a libpython (readelf -d shows none)."
grep -Eq "(^|, )$libpython( |,|$)" <<<"$shlibs" ||
    die "dpkg-shlibdeps gave '$shlibs', without $libpython, which the module links."

depends="apache2-api-$mmn, apache2-bin (>= 2.4.16), $shlibs"

# Installed-Size as dpkg-gencontrol counts it: KiB per file, rounded up,
# and one per directory or link.
installed_size=$(find "$stage" -mindepth 1 -path "$stage/DEBIAN" -prune -o -printf '%y %s\n' |
    awk '$1 == "f" { s += int(($2 + 1023) / 1024); next } { s += 1 } END { print s }')

sed -e "s|@VERSION@|$version|" \
    -e "s|@ARCH@|$arch|" \
    -e "s|@MAINTAINER@|$maintainer|" \
    -e "s|@INSTALLED_SIZE@|$installed_size|" \
    -e "s|@DEPENDS@|$depends|" \
    "$meta/control.in" >"$stage/DEBIAN/control"
grep -q '@' <(grep -v '^Maintainer:' "$stage/DEBIAN/control") &&
    die "unfilled @...@ in $stage/DEBIAN/control"

(cd "$stage" && find . -path ./DEBIAN -prune -o -type f -printf '%P\n' | LC_ALL=C sort |
    xargs -d '\n' md5sum) >"$stage/DEBIAN/md5sums"
chmod 644 "$stage/DEBIAN/control" "$stage/DEBIAN/conffiles" "$stage/DEBIAN/md5sums"

# --- The package --------------------------------------------------------------
mkdir -p "$out"
deb=$(cd "$out" && pwd)/${pkg}_${version}_${arch}.deb
step "Writing $deb"
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git -C "$repo" log -1 --format=%ct HEAD 2>/dev/null || date +%s)}
dpkg-deb --root-owner-group -Zxz --build "$stage" "$deb" >/dev/null
dpkg-deb --info "$deb" | sed -n '/^ Package:/,$p'
if command -v lintian >/dev/null 2>&1; then
    step "lintian"
    lintian --no-tag-display-limit "$deb" || true
fi
echo
echo "Built $deb"
echo "Install it (as root) and enable the module:"
echo "  apt-get install $deb && a2enmod wsgi_rs"
