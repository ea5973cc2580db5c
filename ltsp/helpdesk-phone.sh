#!/bin/bash
# helpdesk-phone: the desk's SIP softphone (baresip) on an LTSP kiosk,
# registered to this desk's operator extension on the helpdesk's Asterisk
# (dialplans/pjsip.conf, made by dialplans/add-operator.sh).  Queue calls and
# click-to-call ring it; nothing is answered by itself.
#
#   helpdesk-phone run          keep baresip running (the kiosk session and
#                               the XDG autostart entry start this)
#   helpdesk-phone accept       answer the ringing call   (F9, headset button)
#   helpdesk-phone hangup       end or refuse the call     (F10)
#   helpdesk-phone config DIR   write baresip's configuration to DIR, exit
#
# Settings: /etc/default/helpdesk-phone, written at boot from ltsp.conf:
#   HELPDESK_SIP_USER       the desk's extension, e.g. 101
#   HELPDESK_SIP_PASSWORD   its password (printed once by add-operator.sh)
#   HELPDESK_SIP_DOMAIN     the Asterisk host, e.g. pbx.helpdesk.lan
#   HELPDESK_PHONE_AUDIO    baresip audio device for the headset (alsa,default)
#   HELPDESK_PHONE_ALERT    where the ring tone plays (the headset's device)
#   HELPDESK_PHONE_CONTROL  baresip's control port (127.0.0.1:4444)
# Environment (mostly for testing):
#   HELPDESK_PHONE_CONF       settings file   (/etc/default/helpdesk-phone)
#   HELPDESK_PHONE_TEMPLATES  config, accounts templates (/etc/helpdesk-phone)
#   HELPDESK_PHONE_BARESIP    baresip command (baresip)

set -u

conf=${HELPDESK_PHONE_CONF:-/etc/default/helpdesk-phone}
# NAME="value" lines, read rather than sourced: a password is data, whatever
# characters it has.
if [ -r "$conf" ]; then
    while IFS= read -r line || [ -n "$line" ]; do
        name=${line%%=*}
        value=${line#*=}
        value=${value#\"}
        value=${value%\"}
        case $name in
            HELPDESK_SIP_USER | HELPDESK_SIP_PASSWORD | HELPDESK_SIP_DOMAIN | \
            HELPDESK_PHONE_AUDIO | HELPDESK_PHONE_ALERT | HELPDESK_PHONE_CONTROL)
                printf -v "$name" '%s' "$value" ;;
        esac
    done <"$conf"
fi
templates=${HELPDESK_PHONE_TEMPLATES:-/etc/helpdesk-phone}
control=${HELPDESK_PHONE_CONTROL:-127.0.0.1:4444}

log() {
    if command -v logger >/dev/null 2>&1; then
        logger -t helpdesk-phone -- "$*" 2>/dev/null || true
    fi
    printf 'helpdesk-phone: %s\n' "$*" >&2
}

# The template with {NAME} replaced; quoted replacements, so that "&" or "\"
# in a password stay what they are.
fill() {
    local line
    while IFS= read -r line || [ -n "$line" ]; do
        line=${line//\{SIP_USER\}/"$HELPDESK_SIP_USER"}
        line=${line//\{SIP_PASSWORD\}/"$HELPDESK_SIP_PASSWORD"}
        line=${line//\{SIP_DOMAIN\}/"$HELPDESK_SIP_DOMAIN"}
        line=${line//\{AUDIO\}/"$audio"}
        line=${line//\{ALERT\}/"$alert"}
        line=${line//\{CONTROL\}/"$control"}
        printf '%s\n' "$line"
    done <"$1"
}

# Writes baresip's config and accounts into $1; 1 (and a log line) if the
# settings cannot make a working account.
write_config() {
    local dir=$1
    HELPDESK_SIP_USER=${HELPDESK_SIP_USER:-}
    HELPDESK_SIP_PASSWORD=${HELPDESK_SIP_PASSWORD:-}
    HELPDESK_SIP_DOMAIN=${HELPDESK_SIP_DOMAIN:-pbx.helpdesk.lan}
    audio=${HELPDESK_PHONE_AUDIO:-alsa,default}
    alert=${HELPDESK_PHONE_ALERT:-$audio}
    if [ -z "$HELPDESK_SIP_USER" ]; then
        log "no extension for this desk: set HELPDESK_SIP_USER in its ltsp.conf section"
        return 1
    fi
    # the same characters add-operator.sh accepts for an extension
    case $HELPDESK_SIP_USER in
        *[!0-9A-Za-z_-]*)
            log "HELPDESK_SIP_USER '$HELPDESK_SIP_USER' is not an extension (letters, digits, - and _)"
            return 1 ;;
    esac
    # ; , < > and blanks would end the password inside baresip's account line
    case $HELPDESK_SIP_PASSWORD in
        '' | *[\;\<\>\ \	,]*)
            log "HELPDESK_SIP_PASSWORD for $HELPDESK_SIP_USER is empty or has one of ; , < > or a blank"
            return 1 ;;
    esac
    case $HELPDESK_SIP_DOMAIN in
        *[!0-9A-Za-z.-]*)
            log "HELPDESK_SIP_DOMAIN '$HELPDESK_SIP_DOMAIN' is not a host name"
            return 1 ;;
    esac
    mkdir -p "$dir" || return 1
    (
        umask 0077
        fill "$templates/config" >"$dir/config" &&
            fill "$templates/accounts" >"$dir/accounts" &&
            : >"$dir/contacts"
    )
}

# One command to the running baresip over ctrl_tcp (a JSON netstring); 0 if
# baresip said ok.
send() {
    local json len reply host=${control%:*} port=${control##*:}
    json=$(printf '{"command":"%s","params":"","token":"%s"}' "$1" "$1")
    if ! exec 3<>"/dev/tcp/$host/$port"; then
        log "the softphone is not running (no answer on $control)"
        return 1
    fi
    printf '%d:%s,' "${#json}" "$json" >&3
    # baresip sends every connection its events (ringing, ...) too: read
    # netstrings until the response to this command
    reply=
    while IFS= read -r -t 5 -d : len <&3 && IFS= read -r -t 5 -N "$((len + 1))" reply <&3; do
        case $reply in *'"response":true'*) break ;; esac
        reply=
    done
    exec 3<&-
    case $reply in
        *'"ok":true'*) return 0 ;;
        *) log "$1 refused: ${reply:-no reply}"; return 1 ;;
    esac
}

run() {
    local dir=${HOME:?}/.baresip baresip lock
    read -r -a baresip <<<"${HELPDESK_PHONE_BARESIP:-baresip}"
    write_config "$dir" || { sleep 60; exit 2; }
    # one phone per session, however it was started
    lock="${XDG_RUNTIME_DIR:-/tmp}/helpdesk-phone.$(id -u).lock"
    exec 9>"$lock"
    if ! flock -n 9; then
        log "already running"
        exit 0
    fi
    pid=
    trap 'if [ -n "$pid" ]; then kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; fi; exit 0' TERM INT HUP
    log "registering $HELPDESK_SIP_USER@$HELPDESK_SIP_DOMAIN"
    while true; do
        "${baresip[@]}" -f "$dir" </dev/null &
        pid=$!
        wait "$pid"
        log "baresip ended (status $?); starting it again in 5 s"
        sleep 5 &
        wait "$!"
    done
}

case ${1:-} in
    run) run ;;
    accept | hangup) send "$1" ;;
    config)
        [ -n "${2:-}" ] || { echo "usage: helpdesk-phone config DIR" >&2; exit 2; }
        write_config "$2" ;;
    *) echo "usage: helpdesk-phone run | accept | hangup | config DIR" >&2; exit 2 ;;
esac
