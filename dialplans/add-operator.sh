#!/bin/sh
# Add an operator softphone to the helpdesk's PJSIP configuration.
#
#   add-operator.sh EXTENSION [FILE]
#
# Appends an endpoint, AOR and auth named EXTENSION (e.g. 101) made from the
# templates in pjsip.conf to FILE (default
# /etc/asterisk/helpdesk/pjsip_operators.conf) with a random password, and
# prints the password once for the softphone. Then:
#   asterisk -rx "module reload res_pjsip.so"
#   helpdesk user ...   (and set the user's extension to EXTENSION in the UI)
set -eu
ext=${1:?usage: add-operator.sh EXTENSION [FILE]}
file=${2:-/etc/asterisk/helpdesk/pjsip_operators.conf}
case $ext in
  *[!0-9A-Za-z_-]*|'') echo "add-operator.sh: '$ext' is not a valid extension (letters, digits, - and _)" >&2; exit 2;;
esac
if [ -f "$file" ] && grep -q "^\[$ext\]" "$file"; then
  echo "add-operator.sh: $ext is already in $file" >&2
  exit 1
fi
password=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
umask 027
cat >>"$file" <<CONF

[$ext](helpdesk-operator-endpoint)
auth = $ext
aors = $ext
callerid = Operator $ext <$ext>

[$ext](helpdesk-operator-aor)

[$ext](helpdesk-operator-auth)
username = $ext
password = $password
CONF
echo "operator $ext added to $file"
echo "softphone login: user $ext, password $password (shown once)"
