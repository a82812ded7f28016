#!/bin/sh
# Starts gpsd on DEVICE (clients on 127.0.0.1:PORT, control socket
# CONTROL-SOCKET) and prints the first report with a 3D fix and a position
# that a `gpspipe -w` client gets (a TPV made from a GSA alone says mode 3
# and has no position); exits 1 when 30 reports bring none.
#
#   first-fix.sh PORT CONTROL-SOCKET DEVICE
set -eu
# Debian puts gpsd in /usr/sbin, which an ordinary user's PATH lacks.
PATH=$PATH:/usr/local/sbin:/usr/sbin:/sbin
port=$1
ctl=$2
device=$3
gpsd -N -n -S "$port" -F "$ctl" "$device" &
# gpsd listens once it has started: the client connects as soon as it can.
until gpspipe -w -n 1 "127.0.0.1:$port" >/dev/null 2>&1; do sleep 0.1; done
gpspipe -w -n 30 "127.0.0.1:$port" | grep -m1 '"class":"TPV".*"mode":3.*"lat":'
