/**
 * The initiator side: one SCSI command through the ring, answered with its
 * status, decoded sense, data in and latency, the way a SCSI midlayer sees
 * a command end. The ring does the transport; this measures and decodes.
 */
import type { Completion, Outcome, TcmuRing, TmrResult } from './ring.js';
import { decodeSense, type ScsiRequest, type Sense } from './scsi.js';

/** An initiator's own timeout on a command (the SCSI midlayer's): past it, it aborts the command (ABORT TASK). */
export interface CommandOptions {
  abortAfterMs?: number;
  /** Told when the abort is sent, with what it found. */
  onAbort?: (tmr: TmrResult) => void;
}

export interface CommandResult {
  cmdId: number;
  outcome: Outcome;
  status: number;
  sense: Sense | null;
  senseBytes: Buffer;
  data: Buffer;
  /** From submit() to the command's end, in ms (fractional). */
  latencyMs: number;
}

export async function runCommand(ring: TcmuRing, req: ScsiRequest, o: CommandOptions = {}): Promise<CommandResult> {
  const started = performance.now();
  const handle: { abort?: () => TmrResult } = {};
  const ending = ring.submit(req, handle);
  let timer: NodeJS.Timeout | undefined;
  if (o.abortAfterMs !== undefined) timer = setTimeout(() => o.onAbort?.(handle.abort!()), o.abortAfterMs);
  const c: Completion = await ending;
  clearTimeout(timer);
  return {
    cmdId: c.cmdId,
    outcome: c.outcome,
    status: c.status,
    sense: c.sense.length ? decodeSense(c.sense) : null,
    senseBytes: c.sense,
    data: c.data,
    latencyMs: performance.now() - started,
  };
}
