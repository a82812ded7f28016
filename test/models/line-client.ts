/**
 * A client process that holds a device node open and runs one op per
 * stdin line, answering one line each (tty-client.ts, i2c-client.ts give
 * the programs). It prints "open" once the node is open.
 */
import { pythonInteractive, type Interactive } from '../helpers/proc.js';

export class LineClient {
  private constructor(readonly proc: Interactive) {}

  /** Starts the python3 program `source` on `path`; resolves once it has opened the node. */
  static async open(source: string, path: string, what: string): Promise<LineClient> {
    const proc = pythonInteractive(source, [path]);
    const first = await proc.line();
    if (first !== 'open') throw new Error(`${what} did not open ${path}: ${first} ${proc.stderr}`);
    return new LineClient(proc);
  }

  async op(line: string, timeoutMs?: number): Promise<string> {
    this.proc.send(line);
    return this.proc.line(timeoutMs);
  }

  /** Sends an op without waiting for its answer (a call that blocks); `answer()` collects it. */
  start(line: string): void {
    this.proc.send(line);
  }

  answer(timeoutMs?: number): Promise<string> {
    return this.proc.line(timeoutMs);
  }

  async close(): Promise<void> {
    this.proc.child.stdin!.end();
    await this.proc.exited;
  }
}
