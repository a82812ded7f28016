/**
 * The initiator side: one SCSI command through the ring, answered with its
 * status, decoded sense, data in and latency, the way a SCSI midlayer sees
 * a command end. The ring does the transport; this measures and decodes.
 */
import type { Completion, Outcome, TcmuRing } from './ring.js';
import { decodeSense, type ScsiRequest, type Sense } from './scsi.js';

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

export async function runCommand(ring: TcmuRing, req: ScsiRequest): Promise<CommandResult> {
  const started = performance.now();
  const c: Completion = await ring.submit(req);
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
