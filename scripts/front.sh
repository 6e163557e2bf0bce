#!/usr/bin/env bash
# The production front (deploy/nginx) for a local run, unprivileged:
#   scripts/front.sh up|down|status
# MEDCARD_FRONT_PORT (8080): where nginx listens; MEDCARD_UPSTREAMS ("127.0.0.1:8000"):
# the `medcard serve` processes, space-separated; MEDCARD_FRONT_PREFIX (var/nginx): its
# files.  uvicorn takes the client address from X-Forwarded-For of a loopback proxy, so
# the rate limits see the real clients.  Needs Debian's nginx (apt-get install nginx).
set -euo pipefail
cd "$(dirname "$0")/.."
PORT=${MEDCARD_FRONT_PORT:-8080}
UPSTREAMS=${MEDCARD_UPSTREAMS:-127.0.0.1:8000}
PREFIX=${MEDCARD_FRONT_PREFIX:-var/nginx}
NGINX_BIN=${MEDCARD_NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}
unset NGINX  # nginx reads inherited sockets from this variable
PREFIX=$(realpath -m "$PREFIX")

render() {
  mkdir -p "$PREFIX"/logs "$PREFIX"/tmp
  cp deploy/nginx/nginx.conf "$PREFIX"/nginx.conf
  servers=""
  for u in $UPSTREAMS; do servers+="    server $u max_fails=3 fail_timeout=10s;\n"; done
  # the site as shipped, with this run's port and app processes
  awk -v servers="$servers" -v port="$PORT" '
    /^upstream medcard_app/ { print; inup=1; printf "%s", servers; next }
    inup && /server 127\.0\.0\.1:8000/ { next }
    inup && /^}/ { inup=0 }
    /^    listen 8080;/ { print "    listen 127.0.0.1:" port ";"; next }
    { print }
  ' deploy/nginx/medcard.conf | sed 's/\\n/\n/g' > "$PREFIX"/site.conf
}

case ${1:-status} in
  up)
    [ -x "$NGINX_BIN" ] || { echo "nginx is missing: apt-get install nginx" >&2; exit 1; }
    render
    "$NGINX_BIN" -p "$PREFIX" -c nginx.conf -t -q
    "$NGINX_BIN" -p "$PREFIX" -c nginx.conf
    echo "front: http://127.0.0.1:$PORT -> $UPSTREAMS"
    ;;
  down)
    if [ -f "$PREFIX"/nginx.pid ]; then
      "$NGINX_BIN" -p "$PREFIX" -c nginx.conf -s quit || true
      for _ in $(seq 1 50); do [ -f "$PREFIX"/nginx.pid ] || break; sleep 0.1; done
    fi
    echo "front: stopped"
    ;;
  status)
    if [ -f "$PREFIX"/nginx.pid ] && kill -0 "$(cat "$PREFIX"/nginx.pid)" 2>/dev/null; then
      echo "front: running (pid $(cat "$PREFIX"/nginx.pid)) on 127.0.0.1:$PORT"
    else
      echo "front: not running"; exit 3
    fi
    ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
