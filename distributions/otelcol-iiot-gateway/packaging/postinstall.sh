#!/bin/sh
# deb: postinst configure [<old version>]; rpm: %post 1 (install) or 2 (upgrade).
set -e
NAME=otelcol-iiot-gateway

# The state directory holds the disk-backed queues: only the service user may read it.
install -d -o "$NAME" -g "$NAME" -m 0750 "/var/lib/$NAME"

case "$1" in
    configure) if [ -n "$2" ]; then upgrade=1; else upgrade=0; fi ;;
    1) upgrade=0 ;;
    *) upgrade=1 ;;
esac

# Only with a running systemd: a container or a chroot (image build) has none, and the
# service must not be enabled or started there behind the user's back.
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload
    if [ "$upgrade" = 0 ]; then
        systemctl enable "$NAME.service"
        systemctl start "$NAME.service" || echo "$NAME: did not start; see journalctl -u $NAME" >&2
    else
        systemctl try-restart "$NAME.service" || echo "$NAME: restart failed; see journalctl -u $NAME" >&2
    fi
fi
exit 0
