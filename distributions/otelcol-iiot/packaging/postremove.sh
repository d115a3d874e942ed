#!/bin/sh
# deb: postrm remove|purge|upgrade|...; rpm: %postun 0 (erase) or 1 (upgrade).
set -e
NAME=otelcol-iiot

if [ -d /run/systemd/system ]; then
    systemctl daemon-reload || true
fi
# Purge deletes the queues that were never delivered; remove (and rpm -e) keeps them. The system
# user stays (Debian policy: its uid may still own files elsewhere).
if [ "$1" = purge ]; then
    rm -rf "/var/lib/$NAME"
    rmdir "/etc/$NAME" 2>/dev/null || true
fi
exit 0
