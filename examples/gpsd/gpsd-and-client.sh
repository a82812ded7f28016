#!/bin/sh
# gpsd on DEVICE as a system would run it for a USB GPS, with one client
# watching it, for the gpsd scenarios (docs/case-study-gpsd.md):
#
#   gpsd-and-client.sh PORT CONTROL-SOCKET DEVICE [HOTPLUG-NAME]
#
# - gpsd -N (no daemon) -n (poll the device without waiting for a client),
#   clients on 127.0.0.1:PORT, control socket CONTROL-SOCKET (gpsdctl's
#   GPSD_SOCKET);
# - a `gpspipe -w` client prints one line per report it gets:
#   "client: TPV mode M lat LAT lon LON" and
#   "client: DEVICE PATH activated WHEN" (0: gpsd dropped the device);
# - with HOTPLUG-NAME, udev-hotplug.sh tells gpsd when that emulated device
#   goes and comes, as udev's gpsd rule does, and the client exits 0 once
#   it gets a fix again after being told the device went and came back.
set -eu
port=$1
ctl=$2
device=$3
hotplug=${4:-}
here=$(dirname "$0")
export GPSD_SOCKET="$ctl"
gpsd -N -n -S "$port" -F "$ctl" "$device" &
if [ -n "$hotplug" ]; then "$here/udev-hotplug.sh" "$hotplug" "$device" & fi
# gpsd listens once it has started: the client connects as soon as it can.
until gpspipe -w -n 1 "127.0.0.1:$port" >/dev/null 2>&1; do sleep 0.1; done
gpspipe -w "127.0.0.1:$port" | awk -v follow="$hotplug" '
  function field(name,    m) {
    if (!match($0, "\"" name "\":\"?[^,\"}]*")) return ""
    m = substr($0, RSTART, RLENGTH); sub(/^"[^"]*":"?/, "", m); return m
  }
  /"class":"DEVICE"/ {
    print "client: DEVICE " field("path") " activated " field("activated"); fflush()
    if (field("activated") == "0") gone = 1; else if (gone) back = 1
  }
  /"class":"TPV"/ && field("mode") == "3" {
    print "client: TPV mode 3 lat " field("lat") " lon " field("lon"); fflush()
    if (follow != "" && back) { print "client: a fix again after the device came back"; exit 0 }
  }'
