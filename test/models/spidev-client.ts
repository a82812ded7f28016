/**
 * A client process holding a spidev node open (O_RDWR) that runs one op
 * per stdin line and answers one line: "ok ..." or the errno name.
 *
 *   xfer TXHEX [FIELD=N ...]          -> ok RESULT RXHEX   SPI_IOC_MESSAGE(1), tx and rx buffers of the tx's length;
 *                                                          fields speed, delay, bits, cs, nbits (tx and rx), wdelay
 *   msg LEN,TXHEX|-,RX,CS ...         -> ok RESULT RXHEX,...  SPI_IOC_MESSAGE(n), one transfer per argument (RX 1: receive)
 *   get CMD SIZE                      -> ok VALUE           an _IOR command of 1 or 4 bytes
 *   set CMD SIZE VALUE                -> ok                 an _IOW command of 1 or 4 bytes
 *   read N                            -> ok HEX
 *   write HEX                         -> ok COUNT
 *   poll EVENTS                       -> ok REVENTS         (0 on timeout, 0 ms)
 *   ioctl CMD                         -> ok RESULT          any command, with a 32-byte buffer
 */
import { LineClient } from '../helpers/line-client.js';

const source = `import ctypes, errno, fcntl, os, select, struct, sys
fd = os.open(sys.argv[1], os.O_RDWR)
print("open", flush=True)

def message(specs):
    keep = []
    raw = b""
    for length, tx, rx, f in specs:
        t = ctypes.create_string_buffer(bytes.fromhex(tx), length) if tx is not None else None
        r = ctypes.create_string_buffer(length) if rx else None
        keep.append((t, r, length))
        raw += struct.pack("QQIIHBBBBBB", ctypes.addressof(t) if t else 0, ctypes.addressof(r) if r else 0, length,
                           f.get("speed", 0), f.get("delay", 0), f.get("bits", 0), f.get("cs", 0),
                           f.get("nbits", 0), f.get("nbits", 0), f.get("wdelay", 0), 0)
    cmd = (1 << 30) | (len(raw) << 16) | (0x6b << 8)
    res = fcntl.ioctl(fd, cmd, bytearray(raw), True)
    return res, ",".join(r.raw.hex() if r else "-" for t, r, n in keep)

for line in sys.stdin:
    a = line.split()
    try:
        if a[0] == "xfer":
            f = {k: int(v, 0) for k, v in (x.split("=") for x in a[2:])}
            res, rx = message([(len(a[1]) // 2, a[1], 1, f)])
            print("ok", res, rx)
        elif a[0] == "msg":
            specs = []
            for s in a[1:]:
                length, tx, rx, cs = s.split(",")
                specs.append((int(length), None if tx == "-" else tx, int(rx), {"cs": int(cs)}))
            print("ok", *message(specs))
        elif a[0] == "get":
            size = int(a[2])
            buf = bytearray(size)
            fcntl.ioctl(fd, (2 << 30) | (size << 16) | (0x6b << 8) | int(a[1], 0), buf, True)
            print("ok", int.from_bytes(buf, "little"))
        elif a[0] == "set":
            size = int(a[2])
            fcntl.ioctl(fd, (1 << 30) | (size << 16) | (0x6b << 8) | int(a[1], 0), int(a[3], 0).to_bytes(size, "little"))
            print("ok")
        elif a[0] == "read":
            print("ok", os.read(fd, int(a[1])).hex())
        elif a[0] == "write":
            print("ok", os.write(fd, bytes.fromhex(a[1])))
        elif a[0] == "ioctl":
            print("ok", fcntl.ioctl(fd, int(a[1], 0), bytearray(32), True))
        elif a[0] == "poll":
            p = select.poll(); p.register(fd, int(a[1], 0)); ev = p.poll(0)
            print("ok", ev[0][1] if ev else 0)
    except OSError as e:
        print(errno.errorcode.get(e.errno, e.errno))
    sys.stdout.flush()
`;

/** spidev ioctl numbers as the client's get/set take them (_IOC_NR). */
export const NR = { mode: 1, lsbFirst: 2, bitsPerWord: 3, maxSpeedHz: 4, mode32: 5 } as const;

export class SpidevClient extends LineClient {
  static open(path: string): Promise<SpidevClient> {
    return this.launch(source, [path]);
  }
}
