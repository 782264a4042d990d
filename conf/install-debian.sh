#!/bin/sh
# Add mod_wsgi-rs to Debian/Ubuntu's a2enmod system:
#
#   conf/install-debian.sh && a2dismod wsgi; a2enmod wsgi_rs
#
# Copies wsgi_rs.load and wsgi_rs.conf into ${APACHE_CONFDIR}/mods-available
# (default /etc/apache2). The module itself is installed by apxs/install.sh.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
confdir=${APACHE_CONFDIR:-/etc/apache2}
avail=$confdir/mods-available

[ -d "$avail" ] || {
    echo "install-debian.sh: error: $avail does not exist." >&2
    echo "  Is Apache installed (apt-get install apache2)? Or set APACHE_CONFDIR." >&2
    exit 1
}

for f in wsgi_rs.load wsgi_rs.conf; do
    install -m 644 "$here/$f" "$avail/$f"
    echo "Installed $avail/$f"
done

if [ -e "$confdir/mods-enabled/wsgi.load" ]; then
    echo
    echo "Note: the C mod_wsgi is enabled (mods-enabled/wsgi.load). Both are"
    echo "wsgi_module, so disable it first: a2dismod wsgi"
fi
if [ ! -f /usr/lib/apache2/modules/mod_wsgi_rs.so ]; then
    echo
    echo "Note: /usr/lib/apache2/modules/mod_wsgi_rs.so is not installed yet:"
    echo "run apxs/install.sh"
fi
echo
echo "Now: a2enmod wsgi_rs && systemctl restart apache2"
