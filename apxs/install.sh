#!/bin/sh
# Install mod_wsgi-rs the way `apxs -i` installs a C module.
#
#   apxs/install.sh [path/to/libmod_wsgi_rs.so]
#
# The module is copied to $(apxs -q LIBEXECDIR)/mod_wsgi_rs.so through a
# temporary file in the same directory and then renamed over the old one, so a
# running Apache keeps mapping its old inode instead of crashing on a file that
# changes under it (this is what apxs -i does via libtool/install).
#
# Environment:
#   APXS=/path/to/apxs   the apxs to ask (default: apxs, then apxs2, on PATH)
#   DESTDIR=/some/root   stage the install under this root (packaging)
set -eu

die() { echo "install.sh: error: $*" >&2; exit 1; }

here=$(cd "$(dirname "$0")/.." && pwd)
module=${1:-$here/target/release/libmod_wsgi_rs.so}

if [ -n "${APXS:-}" ]; then
    [ -x "$APXS" ] || command -v "$APXS" >/dev/null 2>&1 ||
        die "APXS=$APXS is not an executable apxs."
else
    APXS=$(command -v apxs 2>/dev/null || command -v apxs2 2>/dev/null || true)
    [ -n "$APXS" ] || die "apxs not found. Install Apache's development files
  (Debian/Ubuntu: apt-get install apache2-dev; Fedora/RHEL: dnf install httpd-devel)
  or point APXS=/path/to/apxs at one."
fi

if [ ! -f "$module" ]; then
    if [ $# -ge 1 ]; then
        die "module $module not found."
    fi
    die "module $module not found. Build it first:
  cd $here && PYO3_PYTHON=/usr/bin/python3 cargo build --release"
fi

libexecdir=$("$APXS" -q LIBEXECDIR) || die "'$APXS -q LIBEXECDIR' failed."
[ -n "$libexecdir" ] || die "'$APXS -q LIBEXECDIR' printed nothing."

destdir=${DESTDIR:-}
target_dir=$destdir$libexecdir
target=$target_dir/mod_wsgi_rs.so

mkdir -p "$target_dir" || die "cannot create $target_dir (run as root?)."
tmp=$(mktemp "$target_dir/.mod_wsgi_rs.so.XXXXXX") ||
    die "cannot write to $target_dir (run as root?)."
trap 'rm -f "$tmp"' EXIT
cp "$module" "$tmp"
chmod 644 "$tmp"
mv -f "$tmp" "$target"
trap - EXIT

echo "Installed $module"
echo "       to $target"
echo
echo "Add this line to Apache's configuration (or use conf/install-debian.sh"
echo "and 'a2enmod wsgi_rs' on Debian/Ubuntu):"
echo
echo "LoadModule wsgi_module $libexecdir/mod_wsgi_rs.so"
