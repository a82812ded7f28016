/**
 * Playing an evemu recording into a device, as evemu-play writes one to a
 * uinput node (evemu_play()): each event at its recorded time relative to
 * the first, `speed` times faster, through the input core, so clients see
 * the recording's SYN_REPORT packets at its pace. The schedule is kept
 * against the start, so waits do not add up; events of one timestamp (a
 * packet) go in together.
 */
import type { Instance } from '../../core/index.js';
import type { EvemuEvent } from './evemu.js';
import type { InputEvent } from './input.js';

/** A timer's end, told apart from an abort by unplug. */
const ELAPSED = Symbol('elapsed');

/**
 * Waits until `due` (performance.now() ms), or fails with unplug's cancellation
 * as soon as the device is gone: unplug kills the wait queue, and an action
 * must leave the gate for unplug's drain. A timer may fire a little early
 * (it counts from the event loop's cached time), so the wait repeats until
 * `due` has passed.
 */
async function sleepUntil(inst: Instance<unknown>, due: number): Promise<void> {
  for (let left = due - performance.now(); left > 0; left = due - performance.now()) {
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(ELAPSED), Math.ceil(left));
    try {
      await inst.wq.wait(() => false, ac.signal);
    } catch (err) {
      if (ac.signal.reason !== ELAPSED) throw err;
    } finally {
      clearTimeout(timer);
    }
  }
  await inst.wq.wait(() => true); // rejects once the device is gone
}

export interface PlayResult {
  /** Events played. */
  events: number;
  /** Of those, the ones the input core let through. */
  accepted: number;
  /** The recording's length in ms, first to last event, before `speed`. */
  durationMs: number;
}

export async function play(
  inst: Instance<unknown>,
  events: readonly EvemuEvent[],
  speed: number,
  inject: (ev: InputEvent) => boolean,
): Promise<PlayResult> {
  const start = performance.now();
  const t0 = events[0]?.us ?? 0;
  let accepted = 0;
  let last = t0;
  for (const ev of events) {
    if (ev.us !== last) await sleepUntil(inst, start + (ev.us - t0) / 1000 / speed);
    last = ev.us;
    if (inject({ type: ev.type, code: ev.code, value: ev.value })) accepted++;
  }
  return { events: events.length, accepted, durationMs: (last - t0) / 1000 };
}
