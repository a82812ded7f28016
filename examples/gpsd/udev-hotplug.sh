#!/bin/sh
# A stand-in for udev's gpsd rule (Debian's /lib/udev/rules.d/60-gpsd.rules
# runs gpsd.hotplug, which runs gpsdctl): when the emulated device NAME is
# unplugged or plugged, tell gpsd through its control socket
# ($GPSD_SOCKET) that PATH went or came, as udev does for a real USB GPS.
# It follows cdevemu's event stream on $CDEVEMU_SOCKET, and writes a line
# to the FIFO FOLLOWING once it does (the daemon answers the stream's
# headers as it subscribes it): from then on it misses no event.
#
#   udev-hotplug.sh NAME PATH FOLLOWING    e.g. udev-hotplug.sh ttyUSB0 /tmp/gps-mnt/dev/ttyUSB0 /tmp/x/fifo
set -eu
# Debian puts gpsd and gpsdctl in /usr/sbin, which an ordinary user's PATH lacks.
PATH=$PATH:/usr/local/sbin:/usr/sbin:/sbin
name=$1
path=$2
following=$3
curl -sN -D - --unix-socket "$CDEVEMU_SOCKET" http://localhost/v1/events | while read -r event; do
  case $event in
    'HTTP/1.1 200'*) echo following > "$following" ;;
    *'"type":"unplug_started","device":"'"$name"'"'*) gpsdctl remove "$path" ;;
    *'"type":"plugged","device":"'"$name"'"'*) gpsdctl add "$path" ;;
  esac
done
