#!/bin/bash
# helpdesk-kiosk: show the helpdesk operator UI in a full-screen Chromium,
# forever.  Runs as the X session of the kiosk user on an LTSP thin client
# (see ltsp.conf), but works on any X or Wayland session.
#
#   helpdesk-kiosk [URL]
#
# URL defaults to $HELPDESK_URL, which ltsp.conf writes into
# /etc/default/helpdesk-kiosk at boot.
#
# Loop: wait until the helpdesk server accepts TCP connections, start the
# browser, and watch the server.  Chromium does not retry a page that failed
# to load, so when the server was unreachable and comes back (restart,
# network outage), the browser is restarted on a fresh profile.  A crashed
# or closed browser is started again.
#
# Environment (mostly for testing):
#   HELPDESK_KIOSK_CONF            config file      (/etc/default/helpdesk-kiosk)
#   HELPDESK_KIOSK_BROWSER         browser command  (first of chromium,
#                                  chromium-browser, google-chrome-stable)
#   HELPDESK_KIOSK_CHECK_INTERVAL  seconds between server checks (10)
#   HELPDESK_KIOSK_RESTART_DELAY   seconds before restarting the browser (3)
#   HELPDESK_KIOSK_PHONE           softphone command, started with "run" for
#                                  the session's length (helpdesk-phone, if
#                                  installed; empty: none)

set -u

conf=${HELPDESK_KIOSK_CONF:-/etc/default/helpdesk-kiosk}
if [ -r "$conf" ]; then
    # shellcheck source=/dev/null
    . "$conf"
fi

url=${1:-${HELPDESK_URL:-}}
check_interval=${HELPDESK_KIOSK_CHECK_INTERVAL:-10}
restart_delay=${HELPDESK_KIOSK_RESTART_DELAY:-3}

log() {
    if command -v logger >/dev/null 2>&1; then
        logger -t helpdesk-kiosk -- "$*" 2>/dev/null || true
    fi
    printf 'helpdesk-kiosk: %s\n' "$*" >&2
}

if [ -z "$url" ]; then
    log "no URL: pass one or set HELPDESK_URL in $conf"
    # Do not make the display manager re-login in a tight loop.
    sleep 60
    exit 2
fi

# host and port of the URL, for the reachability check
hostport=${url#*://}
hostport=${hostport%%/*}
hostport=${hostport##*@}
case $hostport in
    \[*\]:*) host=${hostport%]:*}; host=${host#[}; port=${hostport##*]:} ;;
    \[*\])   host=${hostport#[}; host=${host%]}; port= ;;
    *:*)     host=${hostport%:*}; port=${hostport##*:} ;;
    *)       host=$hostport; port= ;;
esac
if [ -z "$port" ]; then
    case $url in
        https://*) port=443 ;;
        *)         port=80 ;;
    esac
fi

browser=()
if [ -n "${HELPDESK_KIOSK_BROWSER:-}" ]; then
    read -r -a browser <<<"$HELPDESK_KIOSK_BROWSER"
else
    for candidate in chromium chromium-browser google-chrome-stable; do
        if command -v "$candidate" >/dev/null 2>&1; then
            browser=("$candidate")
            break
        fi
    done
fi
if [ ${#browser[@]} -eq 0 ]; then
    log "no browser found (install chromium in the LTSP image)"
    sleep 60
    exit 3
fi

# sleep, but let a TERM from the display manager end the script at once
pause() {
    sleep "$1" &
    wait "$!"
}

# True if the server accepts a TCP connection within 5 seconds.
server_up() {
    timeout 5 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$host" "$port" \
        >/dev/null 2>&1
}

browser_pid=
profile=
phone_pid=
cleanup() {
    if [ -n "$phone_pid" ]; then
        kill "$phone_pid" 2>/dev/null
        wait "$phone_pid" 2>/dev/null
    fi
    if [ -n "$browser_pid" ]; then
        kill "$browser_pid" 2>/dev/null
        wait "$browser_pid" 2>/dev/null
    fi
    if [ -n "$profile" ]; then
        rm -rf "$profile"
    fi
}
trap cleanup EXIT
trap 'exit 0' TERM INT HUP

# A kiosk screen must not blank.
if [ -n "${DISPLAY:-}" ] && command -v xset >/dev/null 2>&1; then
    xset s off -dpms s noblank 2>/dev/null || true
fi

# The desk's softphone (ltsp.conf installs helpdesk-phone), for as long as
# the session lasts; it waits for its server by itself.
phone=${HELPDESK_KIOSK_PHONE-helpdesk-phone}
if [ -n "$phone" ] && command -v "$phone" >/dev/null 2>&1; then
    "$phone" run &
    phone_pid=$!
fi

log "showing $url (server $host port $port)"
while true; do
    # 1. wait for the server, at most check_interval between tries
    waited=0
    until server_up; do
        if [ "$waited" = 0 ]; then
            log "waiting for $host:$port"
            waited=1
        fi
        pause "$check_interval"
    done

    # 2. a fresh, throw-away profile: no "restore pages?" bubble, no state
    profile=$(mktemp -d "${XDG_RUNTIME_DIR:-/tmp}/helpdesk-kiosk.XXXXXX")
    "${browser[@]}" \
        --kiosk \
        --incognito \
        --no-first-run \
        --disable-background-networking \
        --noerrdialogs \
        --disable-session-crashed-bubble \
        --disable-translate \
        --password-store=basic \
        --user-data-dir="$profile" \
        "$url" &
    browser_pid=$!
    log "started ${browser[0]} (pid $browser_pid)"

    # 3. watch: restart the browser once the server is back after an outage
    was_down=0
    while kill -0 "$browser_pid" 2>/dev/null; do
        pause "$check_interval"
        kill -0 "$browser_pid" 2>/dev/null || break
        if server_up; then
            if [ "$was_down" = 1 ]; then
                log "server is back; reloading"
                kill "$browser_pid" 2>/dev/null
                break
            fi
        else
            if [ "$was_down" = 0 ]; then
                log "server $host:$port unreachable"
            fi
            was_down=1
        fi
    done
    wait "$browser_pid" 2>/dev/null
    browser_pid=
    rm -rf "$profile"
    profile=
    pause "$restart_delay"
done
