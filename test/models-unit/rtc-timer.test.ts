/**
 * The rtc model's update interrupts (src/models/rtc.ts) against a host
 * clock the test moves by hand: one interrupt per second boundary, also
 * when the timer fires before the clock has got there, as Node's timers
 * may (they count from the event loop's cached time, not Date.now()).
 */
import { afterEach, expect, it, vi } from 'vitest';
import { checkValues, type Instance } from '../../src/core/index.js';
import { RTC_UIE_ON, rtcModel, type RtcState } from '../../src/models/rtc.js';

afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
});

it('counts one update interrupt per second boundary when its timer fires early', () => {
  // Timers move only when the test advances them, the host clock only when it sets it.
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
  let now = 1_000_500; // half a second into the host's second 1000 (the clock follows the host's seconds)
  vi.spyOn(Date, 'now').mockImplementation(() => now);
  const inst = { name: 'rtc0', wq: { wake: () => undefined } } as unknown as Instance<RtcState>;
  // The host clock here is in 1970: a range that holds it, the other options their defaults, as a plug checks them.
  const options = checkValues('rtc: option', rtcModel.options!, { rangeMin: '1970-01-01T00:00:00Z' });
  (inst as { state: RtcState }).state = rtcModel.create(inst, options) as RtcState;
  rtcModel.ioctl!({ instance: inst } as never, { cmd: RTC_UIE_ON } as never);
  const count = (): number => Math.floor(inst.state.irqData / 256);

  // The timer due at the boundary fires with the host clock 2 ms short of it: no interrupt yet.
  now = 1_000_998;
  vi.advanceTimersByTime(500);
  expect(count()).toBe(0);
  now = 1_001_000;
  vi.advanceTimersByTime(2);
  expect(count()).toBe(1);
  now = 1_002_000;
  vi.advanceTimersByTime(1000);
  expect(count()).toBe(2);
  clearTimeout(inst.state.timer!);
});
