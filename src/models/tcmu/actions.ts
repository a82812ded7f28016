/**
 * The tcmu model's actions (control API, `cdevemu action`, library API,
 * scenario `action` steps). Argument and result shapes are in
 * docs/models.md; data travels as hex.
 */
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { after } from '../../awaitable.js';
import { Errno } from '../../errno.js';
import { checkField, defineSchema, SchemaError, type ModelAction, type Schema, type Values } from '../../core/index.js';
import { MAX_DURATION_MS } from '../../limits.js';
import { blockDev, resetRing } from './device-actions.js';
import { runCommand, type CommandResult } from './initiator.js';
import { TcmuTmr } from './abi.js';
import type { TmrResult } from './ring.js';
import { TMR_FUNCTIONS, tmrName, tmrType } from './tmr.js';
import { backstoreKey } from './config.js';
import type { TcmuInstance, TcmuState } from './model.js';
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

/** A command's data out: `data` (hex), `dataBase64`, or `dataFile` (data larger than a JSON body holds, whose limit is 1 MiB). */
const DATA_OUT = {
  data: { type: 'string', format: 'hex', description: 'data out, as hex' },
  dataBase64: { type: 'string', format: 'base64', description: 'data out, as base64' },
  dataFile: { type: 'string', format: 'absolute-path', description: 'data out: a file the daemon reads, at most the data area' },
} as const;

const SUBMIT = defineSchema({
  op: { type: 'string', enum: ['tur', 'inquiry', 'read_capacity10', 'read_capacity16', 'read', 'write', 'raw'], required: true, description: 'the command' },
  // INQUIRY's ALLOCATION LENGTH is 16 bits (SPC-4 6.6.1).
  allocationLength: { type: 'integer', min: 0, max: 0xffff, default: 96, description: 'inquiry: bytes of data in' },
  lba: { type: 'integer', min: 0, max: Number.MAX_SAFE_INTEGER, description: 'read, write: the first block (required)' },
  // TRANSFER LENGTH: 16 bits in READ(10)/WRITE(10), 32 in READ(16)/WRITE(16) (SBC-3 5.8, 5.9).
  blocks: { type: 'integer', min: 1, max: 0xffffffff, default: 1, description: 'read, write: blocks (at most 65535 without cdb16)' },
  fill: { type: 'integer', min: 0, max: 255, default: 0, description: 'write without data: the byte every block is filled with' },
  cdb16: { type: 'boolean', default: false, description: 'read, write: a 16-byte CDB (READ(16)/WRITE(16))' },
  ...DATA_OUT,
  cdb: { type: 'string', format: 'hex', description: 'raw: the CDB, 6 to 32 bytes' },
  dataInLength: { type: 'integer', min: 0, max: 0xffffffff, default: 0, description: 'raw: bytes of data in' },
  abortAfterMs: { type: 'integer', min: 0, max: MAX_DURATION_MS, description: 'ABORT TASK the command if it has not ended by then' },
});

const WORKLOAD = defineSchema({
  depth: { type: 'integer', min: 1, max: 0xffff, default: 32, description: 'commands in flight' },
  readPercent: { type: 'integer', min: 0, max: 100, default: 50, description: 'share of reads' },
  blocksPerCommand: { type: 'integer', min: 1, max: 0xffff, description: 'blocks per command; default 8, or as before with resume' },
  chunks: { type: 'integer', min: 1, description: 'chunks of blocksPerCommand blocks the workload spreads over; default all that fit, at most 1024' },
  maxCommands: { type: 'integer', min: 0, default: 0, description: 'stop after this many commands; 0 for none' },
  cdb16: { type: 'boolean', default: false, description: '16-byte CDBs' },
  seed: { type: 'integer', min: 0, max: 0xffffffff, default: 1, description: 'the pattern generator seed' },
  resume: { type: 'boolean', default: false, description: "go on from the backstore's earlier workload (same blocksPerCommand)" },
});

const NETLINK_CMD = { type: 'string', enum: ['ADDED_DEVICE', 'REMOVED_DEVICE', 'RECONFIG_DEVICE'], required: true, description: 'the event' } as const;

/** A data-out field given, or undefined; at most one of them. */
function dataOut(inst: TcmuInstance, action: string, a: Partial<Record<keyof typeof DATA_OUT, string>>): Buffer | undefined {
  const given = Object.keys(DATA_OUT).filter((k) => a[k as keyof typeof DATA_OUT] !== undefined);
  if (given.length > 1) throw new SchemaError(`${MODEL}: action ${action}: give one of data, dataBase64, dataFile, not ${given.join(' and ')}`, given[1]!);
  if (a.dataBase64 !== undefined) return Buffer.from(a.dataBase64, 'base64');
  if (a.dataFile !== undefined) {
    const path = a.dataFile;
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
  return a.data === undefined ? undefined : Buffer.from(a.data, 'hex');
}

function needLba(a: Values<typeof SUBMIT>): number {
  if (a.lba === undefined) throw new SchemaError(`${MODEL}: action submit: argument lba is required for op ${a.op}`, 'lba');
  return a.lba;
}

/** The request the submit action's argument describes. */
function request(inst: TcmuInstance, a: Values<typeof SUBMIT>): ScsiRequest {
  const bs = inst.state.config.hwBlockSize;
  switch (a.op) {
    case 'tur':
      return testUnitReady();
    case 'inquiry':
      return inquiry(a.allocationLength);
    case 'read_capacity10':
      return readCapacity10();
    case 'read_capacity16':
      return readCapacity16();
    case 'read':
      return read(needLba(a), a.blocks, bs, a.cdb16);
    case 'write': {
      const data = dataOut(inst, 'submit', a) ?? Buffer.alloc(a.blocks * bs, a.fill);
      return write(needLba(a), data, bs, a.cdb16);
    }
    case 'raw': {
      const cdb = a.cdb === undefined ? undefined : Buffer.from(a.cdb, 'hex');
      if (!cdb || cdb.length < 6 || cdb.length > 32) throw new SchemaError(`${MODEL}: action submit: raw needs cdb, 6 to 32 bytes of hex`, 'cdb');
      const out = dataOut(inst, 'submit', a);
      if (out && a.dataInLength) throw new SchemaError(`${MODEL}: action submit: raw takes data (out) or dataInLength (in), not both`, 'dataInLength');
      return out ? { cdb, dir: 'out', dataOut: out } : a.dataInLength ? { cdb, dir: 'in', dataInLength: a.dataInLength } : { cdb, dir: 'none' };
    }
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
 * Waits for `p`, or fails with unplug's cancellation when unplug kills the wait
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

function workloadOptions(inst: TcmuInstance, a: Values<typeof WORKLOAD>, carried: AckedContent | undefined): ConstructorParameters<typeof Workload>[2] {
  const c = inst.state.config;
  const blocksPerCommand = a.blocksPerCommand ?? carried?.blocksPerCommand ?? 8;
  if (carried && blocksPerCommand !== carried.blocksPerCommand) {
    throw new SchemaError(`${MODEL}: action workload_start: resume needs blocksPerCommand ${carried.blocksPerCommand}, as before`, 'blocksPerCommand');
  }
  const fit = Math.floor(c.devSize / c.hwBlockSize / blocksPerCommand);
  // The device's size bounds the chunks: known only once it is plugged.
  const chunks = checkField(`${MODEL}: action workload_start: argument`, 'chunks', { ...WORKLOAD.chunks, max: fit }, a.chunks ?? carried?.gens.length ?? Math.min(fit, 1024));
  return { depth: a.depth, readPercent: a.readPercent, blocksPerCommand, chunks, maxCommands: a.maxCommands, cdb16: a.cdb16, seed: a.seed };
}

/** Records a task management function (tcmu_tmr), and its completion when its last command ends (tcmu_tmr_done). */
function reportTmr(inst: TcmuInstance, type: number, t: TmrResult): Record<string, unknown> {
  const report = { function: tmrName(type), inRing: t.inRing, fromQfull: t.fromQfull, notified: t.notified };
  inst.emit('tcmu_tmr', report);
  const started = performance.now();
  void t.done.then(() => inst.emit('tcmu_tmr_done', { function: report.function, waitedMs: Math.round(performance.now() - started) }));
  return report;
}

/** An action the device's netlink family carries out (src/tcmu/netlink.ts), its argument checked here. */
function netlinkAction(name: string, description: string, args?: Schema): ModelAction<TcmuState> {
  return {
    description: `${description} (with --preset tcmu)`,
    ...(args ? { args } : {}),
    run(inst: TcmuInstance, a: Record<string, unknown>) {
      const family = inst.state.consumers;
      if (!family) throw new Errno('ENODEV', `${MODEL}: action ${name}: no netlink family serves ${inst.name} (cdevemu run --preset tcmu)`);
      return family.action(name, a);
    },
  };
}

/** The tcmu model's actions, each with its argument's schema (docs/models.md#tcmu). */
export const tcmuActions: Record<string, ModelAction<TcmuState>> = {
  submit: {
    description: 'one SCSI command from the initiator; answers when it ends (abortAfterMs: ABORT TASK it if it has not, as the SCSI midlayer does when its timer runs out)',
    args: SUBMIT,
    async run(inst: TcmuInstance, a: Values<typeof SUBMIT>) {
      let abort: Record<string, unknown> | undefined;
      const o = a.abortAfterMs === undefined ? {} : { abortAfterMs: a.abortAfterMs, onAbort: (t: TmrResult) => (abort = reportTmr(inst, TcmuTmr.ABORT_TASK, t)) };
      const r = await unlessUnplugged(inst, runCommand(inst.state.ring, request(inst, a), o));
      return { ...resultJson(r, a.op), ...(abort ? { abort } : {}) };
    },
  },
  tmr: {
    description: 'a task management function from the initiator (tcmu_tmr_notify()); answers when every command it aborted has ended',
    args: defineSchema({
      function: { type: 'string', enum: TMR_FUNCTIONS, required: true, description: 'abort_task, or a set-wide one' },
      cmdId: { type: 'integer', min: 0, max: 0xffff, description: 'abort_task: the command (required for it, refused for the others)' },
    }),
    async run(inst: TcmuInstance, a: { function: string; cmdId: number | undefined }) {
      const type = tmrType(a.function);
      if ((type === TcmuTmr.ABORT_TASK) !== (a.cmdId !== undefined)) throw new SchemaError(`${MODEL}: action tmr: abort_task takes a cmdId, the other functions none`, 'cmdId');
      const t = inst.state.ring.taskManagement(type, a.cmdId);
      const report = reportTmr(inst, type, t);
      const started = performance.now();
      await unlessUnplugged(inst, t.done);
      return { ...report, waitedMs: Math.round(performance.now() - started) };
    },
  },
  workload_start: {
    description: 'starts the built-in initiator workload of reads and writes',
    args: WORKLOAD,
    run(inst: TcmuInstance, a: Values<typeof WORKLOAD>) {
      const s = inst.state;
      if (s.workload?.report().running) throw new Errno('EBUSY', `${MODEL}: a workload is running; stop it first`);
      const carried = a.resume ? (inst.modelData.get(ackedKey(backstoreKey(s.config))) as AckedContent | undefined) : undefined;
      if (a.resume && !carried) throw new Errno('ENOENT', `${MODEL}: no earlier workload on backstore ${backstoreKey(s.config)} to resume`);
      const o = workloadOptions(inst, a, carried);
      s.workload = new Workload(s.ring, s.config.hwBlockSize, o, (r) => inst.emit('tcmu_workload_done', { ...r }), carried);
      return { started: true, resumed: carried !== undefined, ...o };
    },
  },
  workload_stop: {
    description: "stops the workload; answers its report",
    run(inst: TcmuInstance) {
      const w = inst.state.workload;
      if (!w) throw new Errno('ENOENT', `${MODEL}: no workload was started`);
      w.stop();
      return w.report();
    },
  },
  /**
   * What the workload knows of the device's content, chunk by chunk: the
   * write each chunk's blocks hold (workload.ts `pattern(chunk, write,
   * bytes)`, with its SHA-256), never written, or unknown (a write that did
   * not end GOOD).
   */
  workload_export: {
    description: "what the workload knows of the device's content, chunk by chunk; inline, or with path as JSON Lines in a new file (mode 0600)",
    args: defineSchema({ path: { type: 'string', format: 'absolute-path', description: 'a new file to write the chunks to' } }),
    run(inst: TcmuInstance, a: { path: string | undefined }) {
      const w = inst.state.workload;
      if (!w) throw new Errno('ENOENT', `${MODEL}: no workload was started`);
      const chunks = exportAcked(w.acked(), inst.state.config.hwBlockSize);
      const summary = { blockSize: inst.state.config.hwBlockSize, blocksPerCommand: w.acked().blocksPerCommand, chunks: chunks.length, acked: chunks.filter((c) => c.state === 'acked').length };
      if (a.path === undefined) return { ...summary, content: chunks };
      try {
        writeFileSync(a.path, chunks.map((c) => JSON.stringify(c) + '\n').join(''), { flag: 'wx', mode: 0o600 });
      } catch (err) {
        throw new Errno((err as NodeJS.ErrnoException).code === 'EEXIST' ? 'EEXIST' : 'EACCES', `${MODEL}: action workload_export: ${(err as Error).message}`);
      }
      return { ...summary, path: a.path };
    },
  },
  workload_status: {
    description: "the workload's report and the ring's counters",
    run(inst: TcmuInstance) {
      const w = inst.state.workload;
      if (!w) throw new Errno('ENOENT', `${MODEL}: no workload was started`);
      return { ...w.report(), ring: inst.state.ring.stats };
    },
  },
  block_dev: {
    description: 'tcmu_block_dev / tcmu_unblock_dev, as a write of 1/0 to action/block_dev',
    args: defineSchema({ block: { type: 'boolean', required: true, description: 'block (true) or unblock (false)' } }),
    run: (inst: TcmuInstance, a: { block: boolean }) => after(blockDev(inst, a.block), (blocked) => ({ blocked })),
  },
  reset_ring: {
    description: 'tcmu_reset_ring, as a write of 1/2 to action/reset_ring',
    args: defineSchema({ level: { type: 'integer', enum: [1, 2], default: 1, description: '1: fail the commands in the ring; 2: also reset the ring' } }),
    run: (inst: TcmuInstance, a: { level: 1 | 2 }) => after(resetRing(inst, a.level), (failed) => ({ failed })),
  },
  // The device's netlink traffic (src/tcmu/netlink.ts).
  netlink_send: netlinkAction(
    'netlink_send',
    'sends a netlink event now, outside a plug or unplug; waits for its reply unless wait is false',
    defineSchema({ cmd: NETLINK_CMD, wait: { type: 'boolean', default: true, description: 'wait for the *_DONE reply' } }),
  ),
  netlink_fault: netlinkAction(
    'netlink_fault',
    "a fault on the device's netlink messages: drop, delay or hold the next matching ones",
    defineSchema({
      on: { type: 'string', enum: ['event', 'reply'], required: true, description: 'event: a message the family sends; reply: the *_DONE that answers it' },
      cmd: NETLINK_CMD,
      mode: { type: 'string', enum: ['drop', 'delay', 'hold'], required: true, description: 'what is done to the message' },
      delayMs: { type: 'integer', min: 1, max: MAX_DURATION_MS, description: 'mode delay: the delay (required for it)' },
      times: { type: 'integer', min: 1, default: 1, description: 'how many matching messages it acts on' },
    }),
  ),
  netlink_release: netlinkAction('netlink_release', 'delivers what the netlink faults hold'),
  netlink_faults_clear: netlinkAction('netlink_faults_clear', "removes the device's netlink fault rules"),
  block_netlink: netlinkAction(
    'block_netlink',
    "the module's block_netlink parameter, for the whole family",
    defineSchema({ block: { type: 'boolean', required: true, description: 'block (true) or unblock (false)' } }),
  ),
  reset_netlink: netlinkAction('reset_netlink', "the module's reset_netlink parameter: fails the events waiting for replies"),
  status: {
    description: "the device's name, layout, ring counters and workload",
    run(inst: TcmuInstance) {
      const s = inst.state;
      return { name: s.name, opened: s.opened, layout: s.config.layout, ring: s.ring.stats, workload: s.workload?.report() ?? null };
    },
  },
};
