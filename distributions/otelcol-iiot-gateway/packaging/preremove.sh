#!/bin/sh
# deb: prerm remove|upgrade|deconfigure|failed-upgrade; rpm: %preun 0 (erase) or 1 (upgrade).
set -e
NAME=otelcol-iiot-gateway

case "$1" in
    remove|0)
        if [ -d /run/systemd/system ]; then
            systemctl stop "$NAME.service" || true
        fi
        # Offline too (removes only the symlinks an administrator made in an image).
        if command -v systemctl >/dev/null 2>&1; then
            systemctl disable --quiet "$NAME.service" 2>/dev/null || true
        fi
        ;;
esac
exit 0
