#!/usr/bin/env python3
"""A program under test: consumes interrupts from a uio device the way
tcmu-runner does (open O_RDWR|O_NONBLOCK, poll for POLLIN, read the 4-byte
interrupt count, write 1 to re-enable interrupts).

When the device goes away, poll reports something other than plain POLLIN
(uio answers POLLERR|POLLHUP) or read fails. The well-behaved consumer then
closes the fd and exits 0, so the kernel can free the device.

With --leaky it behaves like the bug the uio late_release patch was written
for: it logs the error, keeps the fd, and carries on without the device,
pinning the device's memory until it exits.

usage: uio_consumer.py [--leaky] /dev/uioN
"""
import errno
import os
import select
import struct
import sys
import time


def log(msg):
    print(f"uio_consumer[{os.getpid()}]: {msg}", flush=True)


def main():
    leaky = "--leaky" in sys.argv[1:]
    path = [a for a in sys.argv[1:] if a != "--leaky"][0]
    fd = os.open(path, os.O_RDWR | os.O_NONBLOCK)
    log(f"opened {path} as fd {fd}")
    os.write(fd, struct.pack("i", 1))  # enable interrupts
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    while True:
        for _, revents in poller.poll(1000):
            failure = None
            if revents != select.POLLIN:
                failure = f"poll revents {revents:#x}"
            else:
                try:
                    (count,) = struct.unpack("i", os.read(fd, 4))
                    log(f"interrupt, count {count}")
                    os.write(fd, struct.pack("i", 1))  # re-arm
                except OSError as e:
                    if e.errno == errno.EAGAIN:
                        continue
                    failure = f"{errno.errorcode[e.errno]} ({e.strerror})"
            if failure is None:
                continue
            if leaky:
                log(f"device error: {failure}; carrying on")  # ...and fd stays open
                poller.unregister(fd)
                while True:
                    time.sleep(1)
            log(f"device gone: {failure}; closing fd {fd}")
            os.close(fd)
            return 0


if __name__ == "__main__":
    sys.exit(main())
