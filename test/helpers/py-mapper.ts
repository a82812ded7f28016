/**
 * python3 mapping region 0 of a device node (mmap.MAP_SHARED, read and
 * write) and running one command per line, answering one line each:
 *
 *   peek OFF LEN   -> ok HEX        the bytes of the map
 *   poke OFF HEX   -> ok            stores them into the map
 *   kick           -> ok 4          write(fd, 4 bytes): uio's irqcontrol, tcmu's kick
 *   irq            -> ok COUNT      read(fd, 4 bytes): uio's interrupt count
 *
 * It says "mapped" first.
 */
import { pythonInteractive, type Interactive } from './proc.js';

export const pyMapper = (path: string, size: number): Interactive =>
  pythonInteractive(
    `import mmap,os,sys
fd = os.open(sys.argv[1], os.O_RDWR)
m = mmap.mmap(fd, int(sys.argv[2]), mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE, offset=0)
print("mapped", flush=True)
for line in sys.stdin:
    a = line.split()
    if a[0] == "peek":
        o, n = int(a[1]), int(a[2]); print("ok", m[o:o+n].hex(), flush=True)
    elif a[0] == "poke":
        o, b = int(a[1]), bytes.fromhex(a[2]); m[o:o+len(b)] = b; print("ok", flush=True)
    elif a[0] == "kick":
        print("ok", os.write(fd, (1).to_bytes(4, "little")), flush=True)
    elif a[0] == "irq":
        print("ok", int.from_bytes(os.read(fd, 4), "little"), flush=True)`,
    [path, String(size)],
  );
