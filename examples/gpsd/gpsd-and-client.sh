#!/bin/sh
# gpsd on DEVICE as a system would run it for a USB GPS, with one client
# watching it, for the gpsd scenarios (docs/case-study-gpsd.md):
#
#   gpsd-and-client.sh PORT CONTROL-SOCKET DEVICE NAME [hotplug]
#
# - gpsd -N (no daemon) -n (poll the device without waiting for a client),
#   clients on 127.0.0.1:PORT, control socket CONTROL-SOCKET (gpsdctl's
#   GPSD_SOCKET);
# - one `gpspipe -w` client, connected once, prints a line per report it
#   gets: "client: TPV mode 3 lat LAT lon LON at TIME" (a 3D fix with its
#   position and its time, which is when the emulated receiver sent it; a
#   TPV made from a GSA alone says mode 3 and has no position, and those
#   before an RMC gave gpsd the date have no time) and
#   "client: DEVICE PATH activated WHEN" (0: gpsd dropped the device);
# - at its first fix, the client asks cdevemu ($CDEVEMU_SOCKET) for the
#   status of NAME, the emulated device behind DEVICE: the scenarios wait
#   for that `action` event before they pull the device. gpsd has then
#   identified the device and answered the client's WATCH (it reports only
#   to watchers); from then on nobody sends gpsd anything, and only a
#   control socket command (hotplug) wakes it: what a wake-up after the
#   pull does is in docs/case-study-gpsd.md#what-wakes-gpsd;
# - with `hotplug`, udev-hotplug.sh tells gpsd when NAME goes and comes, as
#   udev's gpsd rule does (it follows cdevemu's events before the status
#   is asked), and the client exits 0 once it gets a fix again after being
#   told the device went and came back.
#
# Exits 1 when gpsd exits (its port taken, say) or the client loses it.
set -eu
# Debian puts gpsd and gpsdctl in /usr/sbin, which an ordinary user's PATH lacks.
PATH=$PATH:/usr/local/sbin:/usr/sbin:/sbin
port=$1
ctl=$2
device=$3
name=$4
hotplug=${5:-}
here=$(dirname "$0")
: "${CDEVEMU_SOCKET:?run by cdevemu run, which gives the control socket}"
export GPSD_SOCKET="$ctl"
gpsd -N -n -S "$port" -F "$ctl" "$device" &
gpsd=$!
if [ -n "$hotplug" ]; then
  follows="${CDEVEMU_TMP:?run by cdevemu run}/udev-stand-in"
  mkfifo "$follows"
  "$here/udev-hotplug.sh" "$name" "$device" "$follows" &
  read -r _ < "$follows"
fi
# gpsd listens before it opens the device. Wait for its socket rather than
# try connections: every client that comes and goes wakes gpsd.
listening() { grep -q "^ *[0-9]*: 0100007F:$(printf %04X "$port") 00000000:0000 0A " /proc/net/tcp; }
until listening; do
  kill -0 "$gpsd" 2>/dev/null || { echo "gpsd exited before it listened on port $port" >&2; exit 1; }
  sleep 0.1
done
# The value of field $1 in the JSON report $2 (gpsd writes no spaces).
field() {
  v=${2#*\"$1\":}
  [ "$v" != "$2" ] || return 0
  v=${v#\"}
  printf '%s' "${v%%[,\"\}]*}"
}
# The shell's read takes one line at a time: each report is acted on as it comes.
gpspipe -w "127.0.0.1:$port" | {
  fixed='' gone='' back=''
  while IFS= read -r report; do
    case $report in
      *'"class":"DEVICE'*)
        activated=$(field activated "$report")
        echo "client: DEVICE $(field path "$report") activated $activated"
        if [ "$activated" = 0 ]; then gone=1; elif [ -n "$gone" ]; then back=1; fi ;;
      *'"class":"TPV"'*)
        [ "$(field mode "$report")" = 3 ] && [ -n "$(field lat "$report")" ] && [ -n "$(field time "$report")" ] || continue
        echo "client: TPV mode 3 lat $(field lat "$report") lon $(field lon "$report") at $(field time "$report")"
        if [ -z "$fixed" ]; then
          fixed=1
          curl -sSf --unix-socket "$CDEVEMU_SOCKET" -d '{}' "http://localhost/v1/devices/$name/actions/status" >/dev/null
        fi
        if [ -n "$hotplug" ] && [ -n "$back" ]; then
          echo "client: a fix again after the device came back"
          exit 0
        fi ;;
    esac
  done
  echo "client: gpsd closed the connection" >&2
  exit 1
}
