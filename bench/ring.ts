/**
 * Workload 7: a tcmu-style ring ping-pong through a mapped device region,
 * beside the same protocol over a pipe pair in the same run.
 *
 * The device is `benchRingModel`: one 4 KiB region. The program
 * (bench/clients/ringpong.c) stores a 64-byte command at offset 0 and
 * kicks with write(); the model's write handler reads the command in the
 * map, stores its answer at offset 64 and raises the interrupt, which the
 * program collects with read(), as uio's read returns the event count.
 * The command and answer never cross the FUSE channel: only the 4-byte
 * kick and interrupt do.
 */
import { Errno } from '../src/errno.js';
import type { DeviceModel, File } from '../src/core/index.js';
import type { Emulator } from '../src/emulator.js';
import { s32, waitUnlessNonblock } from '../src/models/util.js';
import { metric, type PingOut, type WorkloadResult } from './report.js';

interface RingState {
  /** Interrupts raised, like uio's event count. */
  count: number;
}

const MSG = 64;
const ANSWER_AT = 64;

export const benchRingModel: DeviceModel<RingState> = {
  name: 'bench-ring',
  regions: () => [{ name: 'ring', size: 4096 }],
  create: () => ({ count: 0 }),
  open(file) {
    file.private = file.instance.state.count;
  },
  write(file, data) {
    if (data.length !== 4) throw new Errno('EINVAL');
    const inst = file.instance;
    const ring = inst.regions[0]!.bytes;
    // The answer: the command with its first byte complemented (ringpong.c checks it).
    ring.copyWithin(ANSWER_AT, 0, MSG);
    ring[ANSWER_AT] = ~ring[0]! & 0xff;
    inst.state.count++;
    inst.wq.wake();
    return 4;
  },
  read(file: File<RingState>, size: number, signal: AbortSignal) {
    if (size !== 4) throw new Errno('EINVAL');
    const s = file.instance.state;
    const collect = (): Buffer => {
      file.private = s.count;
      return s32(s.count);
    };
    // The kick raised the interrupt already: answer synchronously (the core's fast path).
    if (s.count !== file.private) return collect();
    return waitUnlessNonblock(file, () => s.count !== file.private, signal).then(collect);
  },
};

export interface RingBenchParams {
  bin: string;
  trips: number;
  warmup: number;
  capMs: number;
  killMs: number;
  runJson<T>(cmd: string, args: string[], timeoutMs: number): Promise<T>;
}

/** Plugs a bench-ring device, runs the program against it and against the pipe pair, and reports both. */
export async function ringWorkload(emu: Emulator, p: RingBenchParams): Promise<WorkloadResult> {
  const inst = await emu.devices.plug({ model: benchRingModel.name, name: 'bench-ring' });
  const tail = [String(p.trips), String(p.warmup), String(p.capMs)];
  try {
    const ref = await p.runJson<PingOut>(p.bin, ['pipepair', ...tail], p.killMs);
    const e = await p.runJson<PingOut>(p.bin, ['device', `${emu.mountpoint}/dev/${inst.nodePath}`, ...tail], p.killMs);
    const rate = (o: PingOut): number => o.ops / ((o.end - o.start) / 1e9);
    return {
      id: '7',
      title: `mapped ring ping-pong 64 B x ${e.ops.toLocaleString('en-US')}`,
      reference: 'the same 64-byte command/answer protocol over a pipe pair to a forked child, both pinned to one CPU',
      metrics: [
        metric('round trips/s', 'rt/s', 'higher', rate(e), rate(ref)),
        metric('p50 latency µs', 'µs', 'lower', e.p50_ns / 1000, ref.p50_ns / 1000),
        metric('p99 latency µs', 'µs', 'lower', e.p99_ns / 1000, ref.p99_ns / 1000),
      ],
      details: { emulated: e, reference: ref },
      remarks: [
        'emulated: command and answer in a MAP_SHARED mapping of the device (FUSE passthrough to a memfd); only the 4-byte kick (write) and irq (read) are FUSE requests',
        ...(e.capped ? [`emulated hit the ${p.capMs / 1000} s cap`] : []),
      ],
    };
  } finally {
    await emu.devices.unplug(inst.name);
  }
}
