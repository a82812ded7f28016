/**
 * A user-written model: a temperature sensor that produces a reading every
 * `intervalMs`, like a character-device front end to a hwmon chip. Load it
 * into the daemon with `cdevemu daemon --model examples/models/thermometer.mjs`
 * (or `models:` in a config file, see examples/config.yaml), then
 *
 *   cdevemu plug thermometer temp0 --option intervalMs=500
 *   cat MOUNT/dev/temp0                      # one line per new reading
 *   cdevemu action temp0 set 41.5
 *
 * It shows the parts of the model API (src/core/model.ts) most devices need:
 * validated options, per-open state (each open file reads every reading
 * once, from the next one on), a blocking read that honours O_NONBLOCK and
 * its AbortSignal, poll, an action, sysfs-like attributes, and a timer that
 * remove() stops, since no model code may run after remove() returns.
 */
import { setInterval, clearInterval } from 'node:timers';

const POLLIN = 0x001;
const POLLRDNORM = 0x040;

/** @typedef {{ celsius: number, sample: number, timer: NodeJS.Timeout | null }} State */

/** @param {{ instance: { state: State } }} file */
const line = (file) => Buffer.from(`temp=${file.instance.state.celsius.toFixed(1)}\n`);

export default {
  name: 'thermometer',
  description: 'a temperature sensor with a reading every intervalMs',
  stream: true,

  // The options, checked by the daemon before create() runs (docs/writing-a-model.md#options-and-actions):
  // `cdevemu models thermometer` shows them, and a plug with intervalMs=5 is refused naming the range.
  options: {
    intervalMs: { type: 'integer', min: 10, max: 3_600_000, default: 1000, description: 'ms between readings' },
    celsius: { type: 'number', min: -273.15, max: 1000, default: 21, description: 'the first reading' },
  },

  create(inst, options) {
    const { intervalMs, celsius } = /** @type {{ intervalMs: number, celsius: number }} */ (options);
    /** @type {State} */
    const state = { celsius, sample: 0, timer: null };
    state.timer = setInterval(() => {
      state.sample++;
      inst.wq.wake(); // readers and pollers look again
    }, intervalMs);
    return state;
  },

  attributes(inst) {
    return { [`sys/class/hwmon/${inst.name}/temp1_input`]: () => `${Math.round(inst.state.celsius * 1000)}\n` };
  },

  open(file) {
    file.private = { seen: file.instance.state.sample };
  },

  async read(file, size, signal) {
    const s = file.instance.state;
    const me = file.private;
    if (me.seen === s.sample) {
      if (file.nonblock) throw Object.assign(new Error('no new reading'), { code: 'EAGAIN' });
      await file.instance.wq.wait(() => me.seen !== s.sample, signal);
    }
    me.seen = s.sample;
    return line(file).subarray(0, size);
  },

  poll(file) {
    return file.private.seen !== file.instance.state.sample ? POLLIN | POLLRDNORM : 0;
  },

  actions: {
    // A bare function: its argument (here a number) reaches it unchecked.
    set(inst, celsius) {
      if (typeof celsius !== 'number') throw new Error('set takes a number of degrees');
      inst.state.celsius = celsius;
      return { celsius };
    },
  },

  remove(inst) {
    if (inst.state.timer) clearInterval(inst.state.timer);
  },
};
