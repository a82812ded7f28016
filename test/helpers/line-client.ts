/**
 * A client process (Python) that holds a device node open and runs one op
 * per stdin line, answering one line each; its first line is "open" once
 * the node is open. test/models' clients for a device class (tty, spidev)
 * give it their source and ops.
 */
import { pythonInteractive, type Interactive } from './proc.js';

export class LineClient {
  constructor(readonly proc: Interactive) {}

  /** Runs `source` with the node's path first in `args`; resolves once it has the node open. */
  protected static async launch<T extends LineClient>(
    this: new (proc: Interactive) => T,
    source: string,
    args: [string, ...string[]],
  ): Promise<T> {
    const proc = pythonInteractive(source, args);
    const first = await proc.line();
    if (first !== 'open') throw new Error(`${this.name} did not open ${args[0]}: ${first} ${proc.stderr}`);
    return new this(proc);
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
