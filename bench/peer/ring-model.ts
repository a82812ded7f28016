/**
 * The device of bench workload 7 (mapped ring ping-pong), a user model
 * module: the bench starts the daemon with
 * `--model dist/bench/peer/ring-model.js` and plugs a `bench-ring` device
 * over the control socket.
 *
 * One 4 KiB region. The program (bench/clients/ringpong.c) stores a
 * 64-byte command at offset 0 and kicks with write(); the write handler
 * reads the command in the map, stores its answer at offset 64 and raises
 * the interrupt, which the program collects with read(), as uio's read
 * returns the event count (drivers/uio/uio.c uio_read). The command and
 * answer never cross the FUSE channel: only the 4-byte kick and interrupt
 * do, as with a tcmu ring (drivers/target/target_core_user.c).
 */
import type { DeviceModel, File } from '../../src/core/index.js';
import { Errno } from '../../src/errno.js';
import { s32, waitUnlessNonblock } from '../../src/models/util.js';

interface RingState {
  /** Interrupts raised, like uio's event count. */
  count: number;
}

const MSG = 64;
const ANSWER_AT = 64;

export const benchRingModel: DeviceModel<RingState> = {
  name: 'bench-ring',
  // As uio's node: no file position (FOPEN_STREAM). Passthrough opens drop it
  // (the kernel refuses it with them); through the page cache it means every
  // write() and read() reaches the device at offset 0 (docs/fuse-protocol.md#page-cache-mappings).
  stream: true,
  regions: () => [{ name: 'ring', size: 4096 }],
  create: () => ({ count: 0 }),
  open(file) {
    // Each open file collects the interrupts raised after it opened, as uio_open records event_count.
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

export default benchRingModel;
