/**
 * A scenario target with no devices and no mount, for running the
 * scenario runner against a real program without FUSE or root: plug,
 * unplug, replug and fault rules fail, the device list is empty, no event
 * ever comes. A test gives the one model action its scenario uses.
 */
import type { ScenarioTarget } from '../../src/scenario/index.js';

export function targetWithoutDevices(mountpoint: string, action: ScenarioTarget['action']): ScenarioTarget {
  const none = (): Promise<never> => Promise.reject(new Error('no devices here'));
  return {
    mountpoint,
    shared: false,
    plug: none,
    unplug: none,
    replug: none,
    addFault: none,
    listFaults: async () => [],
    removeFault: none,
    action,
    devices: async () => [],
    subscribe: async () => () => {},
    sync: async () => {},
  };
}
