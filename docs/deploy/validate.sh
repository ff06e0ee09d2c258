#!/bin/sh
# Validates the proxy configs and systemd units in docs/deploy/ without touching /etc:
# certificate paths and log paths are rewritten to a scratch directory holding a throwaway
# self-signed certificate. Needs: nginx, caddy, openssl, systemd-analyze (Debian: nginx caddy
# openssl systemd). Usage: sh docs/deploy/validate.sh
set -eu
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/tls" "$tmp/log" "$tmp/nginx" "$tmp/caddy"
for name in staff public; do
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
        -subj "/CN=$name.test" -keyout "$tmp/tls/$name.key" -out "$tmp/tls/$name.crt" 2>/dev/null
done
rewrite() { sed -e "s#/etc/lending/tls#$tmp/tls#g" -e "s#/var/log/nginx#$tmp/log#g" -e "s#/var/log/caddy#$tmp/log#g" "$1"; }

status=0
for site in lending-staff lending-public; do
    rewrite "$here/nginx/$site.conf" > "$tmp/nginx/$site.conf"
done
# Each file alone (two hosts), then both in one nginx (the single-host SQLite layout).
for site in lending-staff lending-public "lending-staff lending-public"; do
    includes=""
    for f in $site; do includes="$includes    include $tmp/nginx/$f.conf;
"; done
    cat > "$tmp/nginx/nginx.conf" <<CONF
pid $tmp/nginx.pid;
error_log $tmp/log/error.log;
events {}
http {
    include /etc/nginx/mime.types;
    access_log $tmp/log/access.log;
    client_body_temp_path $tmp/body; proxy_temp_path $tmp/proxy; fastcgi_temp_path $tmp/fcgi;
    uwsgi_temp_path $tmp/uwsgi; scgi_temp_path $tmp/scgi;
$includes}
CONF
    echo "== nginx -t: $site"
    nginx -t -c "$tmp/nginx/nginx.conf" || status=1
done

for site in staff public; do
    rewrite "$here/caddy/Caddyfile.$site" > "$tmp/caddy/Caddyfile.$site"
    echo "== caddy validate: caddy/Caddyfile.$site"
    # Caddy keeps ACME/storage state under XDG_DATA_HOME; keep it in the scratch dir.
    XDG_DATA_HOME="$tmp/xdg" XDG_CONFIG_HOME="$tmp/xdg" \
        caddy validate --config "$tmp/caddy/Caddyfile.$site" --adapter caddyfile || status=1
done

if command -v systemd-analyze >/dev/null; then
    # verify resolves ExecStart=; where the binaries are not installed (this machine), the copies
    # point at /bin/true so every other directive is still checked. The drop-in directory is read too.
    mkdir -p "$tmp/units"
    cp -r "$here/systemd/." "$tmp/units/"
    sed -i -e 's#/usr/local/bin/server#/bin/true#' -e 's#/usr/local/bin/mobile-api#/bin/true#' \
        -e 's#/usr/local/sbin/lending-backup-sqlite#/bin/true#' "$tmp/units/"*.service
    for unit in "$tmp/units/"*.service "$tmp/units/"*.timer; do
        echo "== systemd-analyze verify: systemd/$(basename "$unit")"
        out=$(systemd-analyze verify --man=no "$unit" 2>&1) || status=1
        [ -z "$out" ] || { printf '%s\n' "$out"; status=1; }
    done
    for unit in lending-server.service lending-mobile.service; do
        echo "== systemd-analyze security: $unit"
        systemd-analyze security --offline=yes "$tmp/units/$unit" 2>/dev/null | tail -n 1
    done
fi
[ "$status" = 0 ] && echo "all configs valid"
exit $status
