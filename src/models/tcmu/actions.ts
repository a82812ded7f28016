/**
 * The tcmu model's actions (control API, `cdevemu action`, library API,
 * scenario `action` steps). Argument and result shapes are in
 * docs/models.md; data travels as hex.
 */
import { Errno } from '../../errno.js';
import { actionArg, intField } from '../util.js';
import { runCommand, type CommandResult } from './initiator.js';
import { backstoreKey } from './config.js';
import type { TcmuInstance } from './model.js';
import {
  decodeCapacity,
  inquiry,
  read,
  readCapacity10,
  readCapacity16,
  SAM_STAT_GOOD,
  testUnitReady,
  write,
  type ScsiRequest,
} from './scsi.js';
import { ackedContent, Workload, type AckedContent } from './workload.js';

const MODEL = 'tcmu';

const STATUS_NAMES: Record<number, string> = { 0x00: 'GOOD', 0x02: 'CHECK CONDITION', 0x08: 'BUSY', 0x28: 'TASK SET FULL' };

function hexField(action: string, a: Record<string, unknown>, key: string): Buffer | undefined {
  const v = a[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || !/^([0-9a-fA-F]{2})*$/.test(v)) throw new Errno('EINVAL', `${MODEL}: action ${action}: ${key} must be a string of hex byte pairs`);
  return Buffer.from(v, 'hex');
}

/** The request the submit action's argument describes. */
function request(inst: TcmuInstance, a: Record<string, unknown>): ScsiRequest {
  const bs = inst.state.config.hwBlockSize;
  const cdb16 = a.cdb16 === true;
  const op = a.op;
  switch (op) {
    case 'tur':
      return testUnitReady();
    case 'inquiry':
      return inquiry(intField(MODEL, 'submit', a, 'allocationLength', 96));
    case 'read_capacity10':
      return readCapacity10();
    case 'read_capacity16':
      return readCapacity16();
    case 'read':
      return read(intField(MODEL, 'submit', a, 'lba'), intField(MODEL, 'submit', a, 'blocks', 1), bs, cdb16);
    case 'write': {
      const data = hexField('submit', a, 'data') ?? Buffer.alloc(intField(MODEL, 'submit', a, 'blocks', 1) * bs, intField(MODEL, 'submit', a, 'fill', 0));
      return write(intField(MODEL, 'submit', a, 'lba'), data, bs, cdb16);
    }
    case 'raw': {
      const cdb = hexField('submit', a, 'cdb');
      if (!cdb || cdb.length < 6 || cdb.length > 32) throw new Errno('EINVAL', `${MODEL}: action submit: raw needs cdb, 6 to 32 bytes of hex`);
      const dataOut = hexField('submit', a, 'data');
      const dataInLength = intField(MODEL, 'submit', a, 'dataInLength', 0);
      if (dataOut && dataInLength) throw new Errno('EINVAL', `${MODEL}: action submit: raw takes data (out) or dataInLength (in), not both`);
      return dataOut ? { cdb, dir: 'out', dataOut } : dataInLength ? { cdb, dir: 'in', dataInLength } : { cdb, dir: 'none' };
    }
    default:
      throw new Errno('EINVAL', `${MODEL}: action submit: op must be tur, inquiry, read_capacity10, read_capacity16, read, write or raw, got ${JSON.stringify(op)}`);
  }
}

/** A command's end as JSON. */
export function resultJson(r: CommandResult, op: unknown): Record<string, unknown> {
  const out: Record<string, unknown> = {
    cmdId: r.cmdId,
    outcome: r.outcome,
    status: r.status,
    statusName: STATUS_NAMES[r.status] ?? `0x${r.status.toString(16)}`,
    sense: r.sense,
    senseHex: r.senseBytes.toString('hex'),
    dataLength: r.data.length,
    dataHex: r.data.toString('hex'),
    latencyMs: r.latencyMs,
  };
  if ((op === 'read_capacity10' || op === 'read_capacity16') && r.status === SAM_STAT_GOOD && r.data.length >= 8) out.capacity = decodeCapacity(r.data);
  return out;
}

/**
 * Waits for `p`, or fails with the unplug errno when unplug kills the wait
 * queue: an action must leave the gate for unplug's drain, and the
 * command's end is then reported by the tcmu_removed event.
 */
async function unlessUnplugged<T>(inst: TcmuInstance, p: Promise<T>): Promise<T> {
  const ac = new AbortController();
  const gone = inst.wq.wait(() => false, ac.signal);
  try {
    return await Promise.race([p, gone.then(() => p)]);
  } finally {
    ac.abort();
    gone.catch(() => {});
  }
}

function workloadOptions(inst: TcmuInstance, a: Record<string, unknown>, carried: AckedContent | undefined): ConstructorParameters<typeof Workload>[2] {
  const c = inst.state.config;
  const blocksPerCommand = intField(MODEL, 'workload_start', a, 'blocksPerCommand', carried?.blocksPerCommand ?? 8);
  if (carried && blocksPerCommand !== carried.blocksPerCommand) {
    throw new Errno('EINVAL', `${MODEL}: action workload_start: resume needs blocksPerCommand ${carried.blocksPerCommand}, as before`);
  }
  const fit = Math.floor(c.devSize / c.hwBlockSize / Math.max(1, blocksPerCommand));
  const o = {
    depth: intField(MODEL, 'workload_start', a, 'depth', 32),
    readPercent: intField(MODEL, 'workload_start', a, 'readPercent', 50),
    blocksPerCommand,
    chunks: intField(MODEL, 'workload_start', a, 'chunks', carried?.gens.length ?? Math.min(fit, 1024)),
    maxCommands: intField(MODEL, 'workload_start', a, 'maxCommands', 0),
    cdb16: a.cdb16 === true,
    seed: intField(MODEL, 'workload_start', a, 'seed', 1),
  };
  if (o.depth < 1 || o.readPercent < 0 || o.readPercent > 100 || blocksPerCommand < 1 || o.chunks < 1 || o.chunks > fit || o.maxCommands < 0) {
    throw new Errno('EINVAL', `${MODEL}: action workload_start: depth >= 1, readPercent 0-100, blocksPerCommand >= 1, chunks 1-${fit}, maxCommands >= 0`);
  }
  return o;
}

export const tcmuActions: Record<string, (inst: TcmuInstance, arg: unknown) => unknown> = {
  /** One SCSI command; answers when it ends. */
  async submit(inst, arg) {
    const a = actionArg(MODEL, 'submit', arg);
    const r = await unlessUnplugged(inst, runCommand(inst.state.ring, request(inst, a)));
    return resultJson(r, a.op);
  },
  workload_start(inst, arg) {
    const s = inst.state;
    if (s.workload?.report().running) throw new Errno('EBUSY', `${MODEL}: a workload is running; stop it first`);
    const a = actionArg(MODEL, 'workload_start', arg);
    const carried = a.resume === true ? ackedContent.get(backstoreKey(s.config)) : undefined;
    if (a.resume === true && !carried) throw new Errno('ENOENT', `${MODEL}: no earlier workload on backstore ${backstoreKey(s.config)} to resume`);
    const o = workloadOptions(inst, a, carried);
    s.workload = new Workload(s.ring, s.config.hwBlockSize, o, (r) => inst.emit('tcmu_workload_done', { ...r }), carried);
    return { started: true, resumed: carried !== undefined, ...o };
  },
  workload_stop(inst) {
    const w = inst.state.workload;
    if (!w) throw new Errno('ENOENT', `${MODEL}: no workload was started`);
    w.stop();
    return w.report();
  },
  workload_status(inst) {
    const w = inst.state.workload;
    if (!w) throw new Errno('ENOENT', `${MODEL}: no workload was started`);
    return { ...w.report(), ring: inst.state.ring.stats };
  },
  /** tcmu_block_dev / tcmu_unblock_dev, as a write of 1/0 to action/block_dev. */
  block_dev(inst, arg) {
    const a = actionArg(MODEL, 'block_dev', arg);
    if (typeof a.block !== 'boolean') throw new Errno('EINVAL', `${MODEL}: action block_dev needs {block: true|false}`);
    const on = a.block;
    const block = (): { blocked: boolean } => {
      inst.state.ring.block(on);
      return { blocked: inst.state.ring.blocked };
    };
    const pulled = inst.state.ring.pullCompletions();
    return pulled ? pulled.then(block) : block();
  },
  /** tcmu_reset_ring, as a write of 1/2 to action/reset_ring. */
  reset_ring(inst, arg) {
    const level = intField(MODEL, 'reset_ring', actionArg(MODEL, 'reset_ring', arg), 'level', 1);
    if (level !== 1 && level !== 2) throw new Errno('EINVAL', `${MODEL}: action reset_ring: level must be 1 or 2`);
    return { failed: inst.state.ring.reset(level) };
  },
  status(inst) {
    const s = inst.state;
    return { name: s.name, opened: s.opened, layout: s.config.layout, ring: s.ring.stats, workload: s.workload?.report() ?? null };
  },
};
