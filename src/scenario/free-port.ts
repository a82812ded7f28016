/**
 * `{port}` in a scenario: a TCP port on 127.0.0.1 that nothing listens on
 * when the run starts, so that two runs of one scenario (two test suites
 * at once) do not fight over a fixed port. The kernel picks it: a bind to
 * port 0 takes a free one from ip_local_port_range
 * (net/ipv4/inet_connection_sock.c inet_csk_find_open_port(), which leaves
 * the even ports to connect()), and it is closed again for the program to
 * take.
 */
import { createServer, type AddressInfo } from 'node:net';

export function freeTcpPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: 0, exclusive: true }, () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}
