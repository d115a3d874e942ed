#!/bin/sh
# Runs before the files are unpacked (deb: preinst install|upgrade; rpm: %pre 1|2), so the
# package's group already exists when the env file is given to it.
set -e
NAME=otelcol-iiot

if ! getent group "$NAME" >/dev/null; then
    groupadd --system "$NAME"
fi
if ! getent passwd "$NAME" >/dev/null; then
    useradd --system --gid "$NAME" --home-dir "/var/lib/$NAME" --no-create-home \
        --shell /usr/sbin/nologin --comment "otelcol-iiot collector" "$NAME"
fi
# Serial buses (RS-485 adapters) belong to dialout; the unit adds it too, this covers manual runs.
if getent group dialout >/dev/null; then
    usermod --append --groups dialout "$NAME"
fi
exit 0
