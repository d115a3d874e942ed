#!/bin/sh
# Runs before the files are unpacked (deb: preinst install|upgrade; rpm: %pre 1|2), so the
# package's group already exists when the env file is given to it.
set -e
NAME=otelcol-iiot-gateway

if ! getent group "$NAME" >/dev/null; then
    groupadd --system "$NAME"
fi
if ! getent passwd "$NAME" >/dev/null; then
    useradd --system --gid "$NAME" --home-dir "/var/lib/$NAME" --no-create-home \
        --shell /usr/sbin/nologin --comment "otelcol-iiot-gateway collector" "$NAME"
fi
exit 0
