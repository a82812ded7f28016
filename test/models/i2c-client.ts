/**
 * A client process holding an i2c-dev node open that runs one op per
 * stdin line and answers one line: "ok ..." or the errno name.
 *
 *   slave ADDR | force ADDR | tenbit V | pec V | timeout V | retries V -> ok      (the ioctl with an integer argument)
 *   funcs                  -> ok FUNCS (hex)
 *   poll EVENTS MS         -> ok REVENTS  (0 on timeout)
 *   read N                 -> ok HEX
 *   write HEX              -> ok COUNT
 *   rdwr ADDR N            -> ok HEX     I2C_RDWR with one read message of N bytes from ADDR
 *   smbus RW CMD SIZE HEX  -> ok HEX     I2C_SMBUS with union i2c_smbus_data holding HEX; answers the union's first bytes
 *                                        (as many as HEX had, at least 2)
 */
import { LineClient } from '../helpers/line-client.js';

const source = `import os, sys, errno, fcntl, ctypes, select
libc = ctypes.CDLL(None, use_errno=True)
class Args(ctypes.Structure):
    _fields_ = [("read_write", ctypes.c_uint8), ("command", ctypes.c_uint8), ("size", ctypes.c_uint32), ("data", ctypes.c_void_p)]
class Msg(ctypes.Structure):
    _fields_ = [("addr", ctypes.c_uint16), ("flags", ctypes.c_uint16), ("len", ctypes.c_uint16), ("buf", ctypes.c_void_p)]
class Rdwr(ctypes.Structure):
    _fields_ = [("msgs", ctypes.c_void_p), ("nmsgs", ctypes.c_uint32)]
def ioctl(cmd, arg):
    if libc.ioctl(fd, ctypes.c_ulong(cmd), ctypes.byref(arg)) < 0:
        raise OSError(ctypes.get_errno(), "")
INT = {"retries": 0x701, "timeout": 0x702, "slave": 0x703, "tenbit": 0x704, "force": 0x706, "pec": 0x708}
fd = os.open(sys.argv[1], os.O_RDWR)
print("open", flush=True)
for line in sys.stdin:
    a = line.split()
    try:
        if a[0] in INT:
            fcntl.ioctl(fd, INT[a[0]], int(a[1], 0)); print("ok")
        elif a[0] == "funcs":
            buf = bytearray(8); fcntl.ioctl(fd, 0x705, buf, True)
            print("ok", hex(int.from_bytes(buf, "little")))
        elif a[0] == "poll":
            p = select.poll(); p.register(fd, int(a[1], 0)); ev = p.poll(int(a[2]))
            print("ok", ev[0][1] if ev else 0)
        elif a[0] == "read":
            print("ok", os.read(fd, int(a[1])).hex())
        elif a[0] == "write":
            print("ok", os.write(fd, bytes.fromhex(a[1])))
        elif a[0] == "smbus":
            given = bytes.fromhex(a[4]) if len(a) > 4 else b""
            data = ctypes.create_string_buffer(given.ljust(34, b"\\0"), 34)
            ioctl(0x720, Args(int(a[1]), int(a[2], 0), int(a[3]), ctypes.addressof(data)))
            print("ok", data.raw[:max(2, len(given))].hex())
        elif a[0] == "rdwr":
            n = int(a[2]); buf = ctypes.create_string_buffer(n)
            msg = Msg(int(a[1], 0), 1, n, ctypes.addressof(buf))
            ioctl(0x707, Rdwr(ctypes.addressof(msg), 1))
            print("ok", buf.raw.hex())
    except OSError as e:
        print(errno.errorcode.get(e.errno, str(e.errno)))
    sys.stdout.flush()
`;

export class I2cClient extends LineClient {
  static open(path: string): Promise<I2cClient> {
    return this.launch(source, [path]);
  }
}
