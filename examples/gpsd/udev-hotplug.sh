#!/bin/sh
# A stand-in for udev's gpsd rule (Debian's /lib/udev/rules.d/60-gpsd.rules
# runs gpsd.hotplug, which runs gpsdctl): when the emulated device NAME is
# unplugged or plugged, tell gpsd through its control socket
# ($GPSD_SOCKET) that PATH went or came, as udev does for a real USB GPS.
# It follows cdevemu's event stream on $CDEVEMU_SOCKET.
#
#   udev-hotplug.sh NAME PATH      e.g. udev-hotplug.sh ttyUSB0 /dev/gps/ttyUSB0
set -eu
name=$1
path=$2
curl -sN --unix-socket "$CDEVEMU_SOCKET" http://localhost/v1/events | while read -r event; do
  case $event in
    *'"type":"unplug_started","device":"'"$name"'"'*) gpsdctl remove "$path" ;;
    *'"type":"plugged","device":"'"$name"'"'*) gpsdctl add "$path" ;;
  esac
done
