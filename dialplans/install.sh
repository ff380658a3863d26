#!/bin/sh
# Install the callcenter's Asterisk files into an existing Asterisk (README.md):
#   CALLCENTER_AMI_SECRET=… dialplans/install.sh [/etc/asterisk]
# Copies the dialplan, queue and prompt-less files into <etc>/callcenter/, writes manager.conf
# there with the secret from the environment (mode 0640, never echoed), and prints the
# #include lines and reload commands still to do by hand. Nothing outside <etc>/callcenter/ is
# changed.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
etc=${1:-/etc/asterisk}
secret=${CALLCENTER_AMI_SECRET:-}
if [ -z "$secret" ]; then
    echo "CALLCENTER_AMI_SECRET is not set: export the AMI secret the service uses" >&2
    exit 2
fi
# One line of letters, digits and a few safe symbols: anything else could end the line early or
# be read as config syntax (; [ ] =).
case "$secret" in
    *[!A-Za-z0-9._~@%+:/-]*) echo "CALLCENTER_AMI_SECRET: only A-Z a-z 0-9 . _ ~ @ % + : / - allowed" >&2; exit 2 ;;
esac
if [ "${#secret}" -lt 16 ]; then
    echo "CALLCENTER_AMI_SECRET: use at least 16 characters" >&2
    exit 2
fi
dest="$etc/callcenter"
mkdir -p "$dest"
for f in hotline.conf survey.conf callback.conf queues_callcenter.conf; do
    install -m 0644 "$here/$f" "$dest/$f"
done
umask 027
tmp=$(mktemp "$dest/.manager.XXXXXX")
# The placeholder is replaced by awk reading the secret from the environment (not argv: no
# other user sees it in the process list).
SECRET="$secret" awk '{ gsub(/@CALLCENTER_AMI_SECRET@/, ENVIRON["SECRET"]); print }' "$here/manager.conf" > "$tmp"
chmod 0640 "$tmp"
mv "$tmp" "$dest/manager.conf"
cat <<MSG
Installed into $dest. Still to do once:
  extensions.conf:  #include "callcenter/hotline.conf"
                    #include "callcenter/survey.conf"
                    #include "callcenter/callback.conf"
  queues.conf:      #include "callcenter/queues_callcenter.conf"
  manager.conf:     #include "callcenter/manager.conf"     (at the end, after [general])
  sounds:           the prompts of prompts.md as <astdatadir>/sounds/zh/callcenter/<name>.wav
                    (astdatadir: /var/lib/asterisk by default)
Then: asterisk -rx 'dialplan reload'; asterisk -rx 'queue reload all'; asterisk -rx 'manager reload'
MSG
