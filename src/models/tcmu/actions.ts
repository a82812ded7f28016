/**
 * The tcmu model's actions (control API, `cdevemu action`, library API,
 * scenario `action` steps). Argument and result shapes are in
 * docs/models.md; data travels as hex.
 */
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { isAbsolute } from 'node:path';
import { after } from '../../awaitable.js';
import { Errno } from '../../errno.js';
import { actionArg, intField } from '../util.js';
import { blockDev, resetRing } from './device-actions.js';
import { runCommand, type CommandResult } from './initiator.js';
import { TcmuTmr } from './abi.js';
import type { TmrResult } from './ring.js';
import { tmrName, tmrType } from './tmr.js';
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
import { ackedKey, exportAcked, Workload, type AckedContent } from './workload.js';

const MODEL = 'tcmu';

const STATUS_NAMES: Record<number, string> = { 0x00: 'GOOD', 0x02: 'CHECK CONDITION', 0x08: 'BUSY', 0x28: 'TASK SET FULL', 0x40: 'TASK ABORTED' };

function hexField(action: string, a: Record<string, unknown>, key: string): Buffer | undefined {
  const v = a[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || !/^([0-9a-fA-F]{2})*$/.test(v)) throw new Errno('EINVAL', `${MODEL}: action ${action}: ${key} must be a string of hex byte pairs`);
  return Buffer.from(v, 'hex');
}

/**
 * A command's data out: `data` (hex), `dataBase64`, or `dataFile` (a path
 * the daemon reads: data larger than a JSON body holds, whose limit is
 * 1 MiB). At most one; none is undefined.
 */
function dataOut(inst: TcmuInstance, action: string, a: Record<string, unknown>): Buffer | undefined {
  const given = ['data', 'dataBase64', 'dataFile'].filter((k) => a[k] !== undefined);
  if (given.length > 1) throw new Errno('EINVAL', `${MODEL}: action ${action}: give one of data, dataBase64, dataFile, not ${given.join(' and ')}`);
  if (a.dataBase64 !== undefined) {
    const v = a.dataBase64;
    if (typeof v !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(v) || v.length % 4) throw new Errno('EINVAL', `${MODEL}: action ${action}: dataBase64 must be base64`);
    return Buffer.from(v, 'base64');
  }
  if (a.dataFile !== undefined) {
    const path = a.dataFile;
    if (typeof path !== 'string' || !isAbsolute(path)) throw new Errno('EINVAL', `${MODEL}: action ${action}: dataFile must be an absolute path`);
    const max = inst.state.config.layout.dataSize;
    let size: number;
    try {
      size = statSync(path).size;
    } catch (err) {
      throw new Errno((err as NodeJS.ErrnoException).code === 'ENOENT' ? 'ENOENT' : 'EACCES', `${MODEL}: action ${action}: dataFile ${path}: ${(err as Error).message}`);
    }
    // Larger than the data area the command could never be queued (tcmu refuses it): refuse it before reading.
    if (size > max) throw new Errno('EFBIG', `${MODEL}: action ${action}: dataFile ${path} holds ${size} bytes, more than the ${max}-byte data area`);
    return readFileSync(path);
  }
  return hexField(action, a, 'data');
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
      const data = dataOut(inst, 'submit', a) ?? Buffer.alloc(intField(MODEL, 'submit', a, 'blocks', 1) * bs, intField(MODEL, 'submit', a, 'fill', 0));
      return write(intField(MODEL, 'submit', a, 'lba'), data, bs, cdb16);
    }
    case 'raw': {
      const cdb = hexField('submit', a, 'cdb');
      if (!cdb || cdb.length < 6 || cdb.length > 32) throw new Errno('EINVAL', `${MODEL}: action submit: raw needs cdb, 6 to 32 bytes of hex`);
      const out = dataOut(inst, 'submit', a);
      const dataInLength = intField(MODEL, 'submit', a, 'dataInLength', 0);
      if (out && dataInLength) throw new Errno('EINVAL', `${MODEL}: action submit: raw takes data (out) or dataInLength (in), not both`);
      return out ? { cdb, dir: 'out', dataOut: out } : dataInLength ? { cdb, dir: 'in', dataInLength } : { cdb, dir: 'none' };
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

/** Records a task management function (tcmu_tmr), and its completion when its last command ends (tcmu_tmr_done). */
function reportTmr(inst: TcmuInstance, type: number, t: TmrResult): Record<string, unknown> {
  const report = { function: tmrName(type), inRing: t.inRing, fromQfull: t.fromQfull, notified: t.notified };
  inst.emit('tcmu_tmr', report);
  const started = performance.now();
  void t.done.then(() => inst.emit('tcmu_tmr_done', { function: report.function, waitedMs: Math.round(performance.now() - started) }));
  return report;
}

function netlinkAction(inst: TcmuInstance, name: string, arg: unknown): Promise<unknown> {
  const family = inst.state.consumers;
  if (!family) throw new Errno('ENODEV', `${MODEL}: action ${name}: no netlink family serves ${inst.name} (cdevemu run --preset tcmu)`);
  return family.action(name, arg === undefined ? {} : actionArg(MODEL, name, arg));
}

export const tcmuActions: Record<string, (inst: TcmuInstance, arg: unknown) => unknown> = {
  /**
   * One SCSI command; answers when it ends. With abortAfterMs, the
   * initiator aborts it (ABORT TASK) if it has not ended by then, as the
   * SCSI midlayer's error handling does when its command timer runs out.
   */
  async submit(inst, arg) {
    const a = actionArg(MODEL, 'submit', arg);
    const abortAfterMs = a.abortAfterMs === undefined ? undefined : intField(MODEL, 'submit', a, 'abortAfterMs');
    let abort: Record<string, unknown> | undefined;
    const o = abortAfterMs === undefined ? {} : { abortAfterMs, onAbort: (t: TmrResult) => (abort = reportTmr(inst, TcmuTmr.ABORT_TASK, t)) };
    const r = await unlessUnplugged(inst, runCommand(inst.state.ring, request(inst, a), o));
    return { ...resultJson(r, a.op), ...(abort ? { abort } : {}) };
  },
  /**
   * A task management function from the initiator (tcmu_tmr_notify()):
   * abort_task {cmdId} or a set-wide one (lun_reset, abort_task_set,
   * clear_task_set...); answers when every command it aborted has ended.
   */
  async tmr(inst, arg) {
    const a = actionArg(MODEL, 'tmr', arg);
    const type = tmrType(a.function);
    const cmdId = a.cmdId === undefined ? undefined : intField(MODEL, 'tmr', a, 'cmdId');
    if ((type === TcmuTmr.ABORT_TASK) !== (cmdId !== undefined)) throw new Errno('EINVAL', `${MODEL}: action tmr: abort_task takes a cmdId, the other functions none`);
    const t = inst.state.ring.taskManagement(type, cmdId);
    const report = reportTmr(inst, type, t);
    const started = performance.now();
    await unlessUnplugged(inst, t.done);
    return { ...report, waitedMs: Math.round(performance.now() - started) };
  },
  workload_start(inst, arg) {
    const s = inst.state;
    if (s.workload?.report().running) throw new Errno('EBUSY', `${MODEL}: a workload is running; stop it first`);
    const a = actionArg(MODEL, 'workload_start', arg);
    const carried = a.resume === true ? (inst.modelData.get(ackedKey(backstoreKey(s.config))) as AckedContent | undefined) : undefined;
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
  /**
   * What the workload knows of the device's content, chunk by chunk: the
   * write each chunk's blocks hold (workload.ts `pattern(chunk, write,
   * bytes)`, with its SHA-256), never written, or unknown (a write that did
   * not end GOOD). With `path`, written there as JSON Lines (a new file,
   * mode 0600), for a test to compare an image with; else answered inline.
   */
  workload_export(inst, arg) {
    const w = inst.state.workload;
    if (!w) throw new Errno('ENOENT', `${MODEL}: no workload was started`);
    const a = arg === undefined ? {} : actionArg(MODEL, 'workload_export', arg);
    const chunks = exportAcked(w.acked(), inst.state.config.hwBlockSize);
    const summary = { blockSize: inst.state.config.hwBlockSize, blocksPerCommand: w.acked().blocksPerCommand, chunks: chunks.length, acked: chunks.filter((c) => c.state === 'acked').length };
    if (a.path === undefined) return { ...summary, content: chunks };
    if (typeof a.path !== 'string' || !isAbsolute(a.path)) throw new Errno('EINVAL', `${MODEL}: action workload_export: path must be an absolute path`);
    try {
      writeFileSync(a.path, chunks.map((c) => JSON.stringify(c) + '\n').join(''), { flag: 'wx', mode: 0o600 });
    } catch (err) {
      throw new Errno((err as NodeJS.ErrnoException).code === 'EEXIST' ? 'EEXIST' : 'EACCES', `${MODEL}: action workload_export: ${(err as Error).message}`);
    }
    return { ...summary, path: a.path };
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
    return after(blockDev(inst, a.block), (blocked) => ({ blocked }));
  },
  /** tcmu_reset_ring, as a write of 1/2 to action/reset_ring. */
  reset_ring(inst, arg) {
    const level = intField(MODEL, 'reset_ring', actionArg(MODEL, 'reset_ring', arg), 'level', 1);
    if (level !== 1 && level !== 2) throw new Errno('EINVAL', `${MODEL}: action reset_ring: level must be 1 or 2`);
    return { failed: resetRing(inst, level) };
  },
  // The device's netlink traffic (src/tcmu/netlink.ts), with --preset tcmu.
  netlink_send: (inst, arg) => netlinkAction(inst, 'netlink_send', arg),
  netlink_fault: (inst, arg) => netlinkAction(inst, 'netlink_fault', arg),
  netlink_release: (inst, arg) => netlinkAction(inst, 'netlink_release', arg),
  netlink_faults_clear: (inst, arg) => netlinkAction(inst, 'netlink_faults_clear', arg),
  block_netlink: (inst, arg) => netlinkAction(inst, 'block_netlink', arg),
  reset_netlink: (inst, arg) => netlinkAction(inst, 'reset_netlink', arg),
  status(inst) {
    const s = inst.state;
    return { name: s.name, opened: s.opened, layout: s.config.layout, ring: s.ring.stats, workload: s.workload?.report() ?? null };
  },
};
