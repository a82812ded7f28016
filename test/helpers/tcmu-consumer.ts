/**
 * A libtcmu stand-in in Python on a real NETLINK_USERSOCK socket, for the
 * tests of the emulated TCM-USER family (src/tcmu/netlink.ts): commands on
 * stdin, one JSON line per answer. It can run as another user (setpriv),
 * bind a given port number, register from a forked child, and flood.
 */
import { Interactive } from './proc.js';

const SOURCE = `
import json, os, socket, struct, sys
port, family = int(sys.argv[1]), int(sys.argv[2])
def open_socket(at):
    s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 2)  # NETLINK_USERSOCK
    s.bind((at, 0))
    return s
s = open_socket(int(sys.argv[3]) if len(sys.argv) > 3 else 0)
me = s.getsockname()[0]
seq = 0
def attr(t, payload):
    n = 4 + len(payload)
    return struct.pack('=HH', n, t) + payload + b'\\0' * ((4 - n % 4) % 4)
def send(cmd, attrs=b'', pid=None, sock=None):
    global seq
    seq += 1
    sock = sock or s
    body = struct.pack('=BBH', cmd, 2, 0) + attrs
    sock.sendto(struct.pack('=IHHII', 16 + len(body), family, 5, seq, sock.getsockname()[0] if pid is None else pid) + body, (port, 0))  # REQUEST|ACK
def recv(ms, sock=None):
    sock = sock or s
    sock.settimeout(ms / 1000)  # 0: only what is queued already
    try:
        d = sock.recv(65536)
    except (socket.timeout, BlockingIOError):
        return {'none': True}
    ln, typ, flags, sq, pid = struct.unpack_from('=IHHII', d)
    if typ == 2:
        return {'ack': struct.unpack_from('=i', d, 16)[0], 'seq': struct.unpack_from('=I', d, 28)[0]}
    cmd, ver = struct.unpack_from('=BB', d, 16)
    attrs, off = {}, 20
    while off + 4 <= ln:
        n, t = struct.unpack_from('=HH', d, off)
        attrs[t] = d[off + 4:off + n]
        off += (n + 3) & ~3
    r = {'cmd': cmd, 'version': ver, 'flags': flags, 'pid': pid,
         'device': attrs[1].rstrip(b'\\0').decode(), 'minor': struct.unpack('=I', attrs[2])[0],
         'id': struct.unpack('=I', attrs[8])[0]}
    if 4 in attrs: r['devcfg'] = attrs[4].rstrip(b'\\0').decode()
    if 5 in attrs: r['devsize'] = struct.unpack('=Q', attrs[5])[0]
    if 6 in attrs: r['writecache'] = attrs[6][0]
    return r
print(json.dumps({'port': me}))
for line in sys.stdin:
    w = line.split()
    if w[0] == 'features': send(7, attr(9, b'\\1'))
    elif w[0] == 'fork-features':  # a child of this process registers on a socket of its own, then exits
        child = os.fork()
        if child == 0:
            c = open_socket(0)
            send(7, attr(9, b'\\1'), sock=c)
            print(json.dumps({**recv(5000, c), 'port': c.getsockname()[0]}))
            os._exit(0)
        os.waitpid(child, 0)
    elif w[0] == 'flood':  # datagrams of 8 bytes (shorter than a netlink header), each sent once there is room
        s.settimeout(None)
        for _ in range(int(w[1])): s.sendto(b'\\0' * 8, (port, 0))
        print(json.dumps({'sent': int(w[1])}))
    elif w[0] == 'features-as': send(7, attr(9, b'\\1'), int(w[1]))  # a wrong nlmsg_pid
    elif w[0] == 'done': send(int(w[1]), attr(7, struct.pack('=i', int(w[3]))) + attr(8, struct.pack('=I', int(w[2]))))
    elif w[0] == 'bare': send(int(w[1]))
    elif w[0] == 'recv': print(json.dumps(recv(int(w[1]))))
    elif w[0] == 'exit': break
`;

export interface ConsumerOptions {
  /** Run as this uid and gid (setpriv), not as the test's user. */
  uid?: number;
  /** Bind this port number instead of letting the kernel choose. */
  bindPort?: number;
}

/** Starts a consumer of the family at `port`; its first line is {"port": ITS_PORT}. */
export function tcmuConsumer(port: number, familyId: number, o: ConsumerOptions = {}): Interactive {
  const args = ['-u', '-c', SOURCE, String(port), String(familyId), ...(o.bindPort !== undefined ? [String(o.bindPort)] : [])];
  if (o.uid === undefined) return new Interactive('python3', args);
  // The system's python: another user may not reach root's PATH (a pyenv under /root, say).
  return new Interactive('setpriv', [`--reuid=${o.uid}`, `--regid=${o.uid}`, '--clear-groups', '/usr/bin/python3', ...args]);
}

/** Sends a command; unless it is `recv`, then asks for the next message (waiting up to `ms`); returns it. */
export async function ask(client: Interactive, cmd: string, ms = 5000): Promise<Record<string, unknown>> {
  client.send(cmd === 'recv' ? `recv ${ms}` : cmd);
  if (cmd !== 'recv') client.send(`recv ${ms}`);
  return JSON.parse(await client.line(ms + 5000)) as Record<string, unknown>;
}
