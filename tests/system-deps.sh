#!/bin/sh
# What `make install` and `make test` need from the system, checked before anything else:
#
#   sh tests/system-deps.sh install|test [PYTHON [VENV]]      (make passes its own values)
#
# install: Python 3.11+ with its venv module (Debian/Ubuntu: python3-venv), the DejaVu font
#          for the reports' PDFs (fonts-dejavu-core); and, only where
#          pip finds no python-gammu wheel for this Python and machine, what building it
#          takes: libgammu-dev, pkg-config, a C compiler, Python's headers.
# test:    the same, and Chromium with its WebDriver for tests/web/test_browser.py: Debian's
#          chromium and chromium-driver; on Ubuntu, whose chromium is a snap, the chromium
#          snap (it carries chromium.chromedriver). HELPDESK_CHROMIUM and
#          HELPDESK_CHROMEDRIVER name another browser and driver (both, or neither).
#          gammu-smsd (its binaries and SQL schema) for tests/desk/test_kalkun_import.py.
#          HAProxy (haproxy) for tests/deploy/test_proxy.py.
#          MariaDB's server, Galera 4 and rsync (mariadb-server galera-4 rsync) for the
#          three-node cluster of tests/cluster/test_galera.py.
#          systemd-analyze, -sysusers, -tmpfiles (systemd), LTSP (ltsp), baresip (baresip-core)
#          dnsmasq (dnsmasq-base) and triggerhappy for the deployment files' tests in
#          tests/deploy/.
#
# Whatever is missing is installed: with apt-get (and snap on Ubuntu) as root, or through
# sudo where sudo asks no password. Otherwise one line names what is missing and the command
# that installs it, and the exit status is 1, so make stops there. Nothing is ever skipped.
set -u

MODE=${1:-test}
PYTHON=${2:-python3}
VENV=${3:-.venv}
HERE=$(cd "$(dirname "$0")/.." && pwd)
cd "$HERE" || exit 1

case $MODE in install|test) ;; *) echo "usage: sh tests/system-deps.sh install|test [PYTHON [VENV]]" >&2; exit 2 ;; esac

OS_ID=unknown
OS_LIKE=
if [ -r /etc/os-release ]; then
    OS_ID=$(. /etc/os-release && echo "${ID:-unknown}")
    OS_LIKE=$(. /etc/os-release && echo "${ID_LIKE:-}")
fi
ubuntu=no
case " $OS_ID $OS_LIKE " in *" ubuntu "*) ubuntu=yes ;; esac

APT=""      # Debian/Ubuntu packages to install
SNAP=""     # snaps to install (Ubuntu's chromium)
WHY=""      # what they are for, for the message
BLOCKER=""  # a problem no package of ours fixes

need_apt()  { APT="$APT $1"; WHY="$WHY${WHY:+; }$2"; }
need_snap() { SNAP="$SNAP $1"; WHY="$WHY${WHY:+; }$2"; }

# -- Python and its venv module ------------------------------------------------------------
check_python() {
    if ! command -v "$PYTHON" >/dev/null 2>&1; then
        need_apt python3-venv "$PYTHON (Python 3.11+) to make $VENV"
        return
    fi
    version=$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)
    if [ -z "$version" ]; then
        BLOCKER="$PYTHON does not run: name a Python 3.11 or later, as in make test PYTHON=python3.11"
        return
    fi
    if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
        BLOCKER="the project needs Python 3.11 or later and $PYTHON is $version: run make with PYTHON=python3.11 (or later)"
        return
    fi
    if [ ! -x "$VENV/bin/python" ] && ! "$PYTHON" -c 'import ensurepip, venv' 2>/dev/null; then
        need_apt python3-venv "Python's venv module to make $VENV"
    fi
}

# -- python-gammu: a wheel, or what building it takes ------------------------------------------
check_gammu() {
    [ -z "$BLOCKER" ] || return 0
    "$VENV/bin/python" -c 'import gammu' 2>/dev/null && return 0
    if [ ! -x "$VENV/bin/pip" ]; then                  # the venv make is about to create anyway
        "$PYTHON" -m venv "$VENV" || { BLOCKER="$PYTHON -m venv $VENV failed"; return; }
        "$VENV/bin/python" -m pip install --quiet --upgrade pip >/dev/null 2>&1 || true
    fi
    req=$(sed -n 's/^ *"\(python-gammu[^"]*\)".*/\1/p' pyproject.toml | head -n 1)
    report=$(mktemp)
    # What `pip install` would take for python-gammu here: a wheel (libGammu inside) or the
    # source distribution, which is built against the system's libGammu.
    if "$VENV/bin/python" -m pip install --dry-run --ignore-installed --no-deps --prefer-binary \
            --quiet --report "$report" "${req:-python-gammu}" >/dev/null 2>&1; then
        url=$("$VENV/bin/python" -c 'import json, sys
print(json.load(open(sys.argv[1]))["install"][0]["download_info"]["url"])' "$report" 2>/dev/null)
    else
        url="(pip could not resolve it without building)"
    fi
    rm -f "$report"
    case $url in *.whl) return 0 ;; esac
    if ! command -v pkg-config >/dev/null 2>&1; then
        need_apt "pkg-config libgammu-dev" "libGammu to build python-gammu (no wheel for this Python and machine)"
    elif ! pkg-config --exists gammu; then
        need_apt libgammu-dev "libGammu to build python-gammu (no wheel for this Python and machine)"
    fi
    command -v cc >/dev/null 2>&1 || need_apt gcc "a C compiler to build python-gammu"
    "$PYTHON" -c 'import os, sys, sysconfig
sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' \
        || need_apt python3-dev "Python's headers to build python-gammu"
}

# -- Chromium and its WebDriver (tests/web/test_browser.py finds them the same way) ---------------
browser_found() {
    if [ -n "${HELPDESK_CHROMIUM:-}${HELPDESK_CHROMEDRIVER:-}" ]; then
        [ -x "${HELPDESK_CHROMIUM:-/nonexistent}" ] && [ -x "${HELPDESK_CHROMEDRIVER:-/nonexistent}" ]
        return
    fi
    { [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; } ||
        { [ -x /snap/bin/chromium ] && [ -x /snap/bin/chromium.chromedriver ]; }
}

check_browser() {
    [ "$MODE" = test ] || return 0
    browser_found && return 0
    if [ -n "${HELPDESK_CHROMIUM:-}${HELPDESK_CHROMEDRIVER:-}" ]; then
        BLOCKER="HELPDESK_CHROMIUM='${HELPDESK_CHROMIUM:-}' and HELPDESK_CHROMEDRIVER='${HELPDESK_CHROMEDRIVER:-}' must both name executables (or unset both)"
    elif [ "$ubuntu" = yes ]; then
        if [ -S /run/snapd.socket ]; then
            need_snap chromium "Chromium and chromium.chromedriver for the browser tests (Ubuntu ships them as a snap)"
        else
            BLOCKER="the browser tests need Chromium and its driver; Ubuntu ships chromium only as a snap and snapd is not running here: start snapd and run 'sudo snap install chromium', or install Google Chrome and its chromedriver and set HELPDESK_CHROMIUM and HELPDESK_CHROMEDRIVER to them"
        fi
    else
        need_apt "chromium chromium-driver" "Chromium and its WebDriver for the browser tests"
    fi
}

# -- the DejaVu font, which the reports' PDFs embed (gateway/reports/export.py), both modes --
check_font() {
    [ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] &&
        [ -f /usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf ] ||
        need_apt fonts-dejavu-core "the DejaVu font for the reports' PDFs"
}

# -- HAProxy, for tests/deploy/test_proxy.py (proxy/haproxy.cfg in front of two UI processes) --
check_haproxy() {
    [ "$MODE" = test ] || return 0
    command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] ||
        need_apt haproxy "HAProxy for the reverse-proxy test"
}

# -- the tools that check systemd/ and ltsp/ (tests/deploy/test_install_layout.py, test_ltsp.py) --
check_deploy_tools() {
    [ "$MODE" = test ] || return 0
    command -v systemd-analyze >/dev/null 2>&1 && command -v systemd-sysusers >/dev/null 2>&1 &&
        command -v systemd-tmpfiles >/dev/null 2>&1 ||
        need_apt systemd "systemd's tools to check the units, sysusers.d and tmpfiles.d files"
    [ -x /usr/sbin/ltsp ] || need_apt ltsp "LTSP to check ltsp/ltsp.conf and build ltsp.img"
    command -v baresip >/dev/null 2>&1 || need_apt baresip-core "baresip to load the kiosk softphone's configuration"
    [ -x /usr/sbin/dnsmasq ] || need_apt dnsmasq-base "dnsmasq to check and serve ltsp/dnsmasq.d/helpdesk.conf"
    [ -x /usr/sbin/thd ] || need_apt triggerhappy "triggerhappy to parse the kiosk phone's keys"
}

# -- gammu-smsd: tests/desk/test_kalkun_import.py runs it and builds from its SQL schema ----
check_smsd() {
    [ "$MODE" = test ] || return 0
    command -v gammu-smsd >/dev/null 2>&1 && command -v gammu-smsd-inject >/dev/null 2>&1 &&
        [ -r /usr/share/doc/gammu-smsd/examples/mysql.sql ] && return 0
    need_apt gammu-smsd "gammu-smsd and its SQL schema for the Kalkun import tests"
}

# -- MariaDB Galera: tests/cluster/test_galera.py boots a 3-node cluster on loopback ports ---
check_galera() {
    [ "$MODE" = test ] || return 0
    [ -x /usr/sbin/mariadbd ] && command -v mariadb-install-db >/dev/null 2>&1 &&
        command -v wsrep_sst_rsync >/dev/null 2>&1 ||
        need_apt mariadb-server "MariaDB's server for the Galera cluster test"
    [ -r /usr/lib/galera/libgalera_smm.so ] || need_apt galera-4 "Galera 4 for the cluster test"
    command -v rsync >/dev/null 2>&1 || need_apt rsync "rsync, the cluster test's state transfer"
}

# -- install, or say what to run ------------------------------------------------------------
command_line() {  # $1: "" or "sudo "
    cmd=""
    if [ -n "$APT" ]; then
        cmd="${1}apt-get update && ${1}apt-get install -y --no-install-recommends$APT"
    fi
    if [ -n "$SNAP" ]; then
        cmd="$cmd${cmd:+ && }${1}snap install$SNAP"
    fi
    echo "$cmd"
}

install_missing() {
    [ -n "$APT$SNAP" ] || return 0
    if [ "$(id -u)" = 0 ]; then
        as=""
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        as="sudo "
    else
        as=none
    fi
    if [ "$as" = none ] || ! command -v apt-get >/dev/null 2>&1; then
        if command -v apt-get >/dev/null 2>&1; then
            run=$(command_line "sudo ")
        else
            run="install the equivalent of:$APT$SNAP with this system's package manager"
        fi
        echo "make $MODE: missing from the system:$APT$SNAP ($WHY). Run: $run" >&2
        exit 1
    fi
    echo "make $MODE: installing$APT$SNAP ($WHY)" >&2
    if [ -n "$APT" ]; then
        ${as}env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null &&
            ${as}env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $APT >/dev/null ||
            { echo "make $MODE: could not install$APT; run: $(command_line "$as")" >&2; exit 1; }
    fi
    if [ -n "$SNAP" ]; then
        ${as}snap install $SNAP >/dev/null ||
            { echo "make $MODE: could not install the snap$SNAP; run: ${as}snap install$SNAP" >&2; exit 1; }
    fi
    APT=""; SNAP=""; WHY=""
}

blocked() {
    if [ -n "$BLOCKER" ]; then
        echo "make $MODE: $BLOCKER" >&2
        exit 1
    fi
}

check_python
check_browser
check_haproxy
check_font
check_deploy_tools
check_smsd
check_galera
blocked
# python-gammu's check needs the venv, so Python's venv module comes first; without root the
# message names everything at once where it can.
if [ -n "$APT$SNAP" ] && ! "$PYTHON" -c 'import ensurepip, venv' 2>/dev/null; then
    install_missing
    check_python
    blocked
fi
check_gammu
blocked
install_missing
if [ "$MODE" = test ] && ! browser_found; then
    echo "make test: Chromium and its driver are still missing after the install" >&2
    exit 1
fi
exit 0
