/**
 * A client process holding a tty node open (O_RDWR | O_NOCTTY, and
 * O_NONBLOCK when asked) that runs one op per stdin line and answers one
 * line: "ok ..." or the errno name.
 *
 *   raw MIN TIME     -> ok            cfmakeraw, then VMIN/VTIME
 *   canon            -> ok            the settings it found at open, again
 *   speed BAUD       -> ok            both speeds (a termios B constant)
 *   attr             -> ok ISPEED OSPEED IFLAG OFLAG CFLAG LFLAG (tcgetattr)
 *   flags I CLR SET  -> ok            termios word I (0 iflag ... 3 lflag) &= ~CLR, |= SET
 *   read N           -> ok HEX
 *   write HEX        -> ok COUNT
 *   int CMD [VALUE]  -> ok VALUE      ioctl with a pointer to an int (TIOCMGET, TIOCMBIS...)
 *   arg CMD VALUE    -> ok RESULT     ioctl with an integer argument (TCFLSH, TCSBRK...)
 *   poll EVENTS MS   -> ok REVENTS    (0 on timeout)
 *   nonblock         -> ok
 */
import { LineClient } from '../helpers/line-client.js';

const source = `import os, sys, errno, select, fcntl, termios, tty, struct
fd = os.open(sys.argv[1], os.O_RDWR | os.O_NOCTTY | (os.O_NONBLOCK if sys.argv[2:] == ["nonblock"] else 0))
initial = termios.tcgetattr(fd)
print("open", flush=True)
for line in sys.stdin:
    a = line.split()
    try:
        if a[0] == "raw":
            tty.setraw(fd)
            t = termios.tcgetattr(fd)
            t[6][termios.VMIN] = int(a[1]); t[6][termios.VTIME] = int(a[2])
            termios.tcsetattr(fd, termios.TCSANOW, t)
            print("ok")
        elif a[0] == "speed":
            t = termios.tcgetattr(fd); t[4] = t[5] = getattr(termios, "B" + a[1])
            termios.tcsetattr(fd, termios.TCSANOW, t); print("ok")
        elif a[0] == "canon":
            termios.tcsetattr(fd, termios.TCSANOW, initial); print("ok")
        elif a[0] == "flags":
            t = termios.tcgetattr(fd); i = int(a[1])
            t[i] = (t[i] & ~int(a[2], 0)) | int(a[3], 0)
            termios.tcsetattr(fd, termios.TCSANOW, t); print("ok")
        elif a[0] == "attr":
            t = termios.tcgetattr(fd)
            print("ok", t[4], t[5], t[0], t[1], t[2], t[3])
        elif a[0] == "read":
            print("ok", os.read(fd, int(a[1])).hex())
        elif a[0] == "write":
            print("ok", os.write(fd, bytes.fromhex(a[1])))
        elif a[0] == "int":
            buf = bytearray(struct.pack("i", int(a[2], 0) if len(a) > 2 else 0))
            fcntl.ioctl(fd, int(a[1], 0), buf, True)
            print("ok", struct.unpack("i", buf)[0])
        elif a[0] == "arg":
            print("ok", fcntl.ioctl(fd, int(a[1], 0), int(a[2], 0)))
        elif a[0] == "poll":
            p = select.poll(); p.register(fd, int(a[1], 0)); ev = p.poll(int(a[2]))
            print("ok", ev[0][1] if ev else 0)
        elif a[0] == "nonblock":
            os.set_blocking(fd, False); print("ok")
    except OSError as e:
        print(errno.errorcode[e.errno])
    except termios.error as e:
        print(errno.errorcode[e.args[0]])
    sys.stdout.flush()
`;

export class TtyClient extends LineClient {
  /** nonblock: an open that passes a port waiting for carrier (tty_port_block_til_ready()). */
  static open(path: string, nonblock = false): Promise<TtyClient> {
    return this.launch(source, nonblock ? [path, 'nonblock'] : [path]);
  }
}

export const hex = (s: string): string => Buffer.from(s, 'latin1').toString('hex');
