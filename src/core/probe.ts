/**
 * Plug: the model's create() (driver probe), then publish the node and its
 * attributes (device_add()). Nothing is visible until probe succeeded.
 */
import { Errno } from '../errno.js';
import { CoreEvent } from './events.js';
import { callModel, CONTROL_CALL, openFile } from './fops.js';
import { DeviceError, type Publisher } from './host.js';
import type { DeviceInstance } from './instance.js';
import { SYS_DIR } from '../devio.js';
import type { Attribute, AttributeOps } from './model.js';
import { DeviceRegions, RegionLayoutError } from './regions.js';

export async function probe<S>(inst: DeviceInstance<S>, publisher: Publisher): Promise<void> {
  const drv = inst.driver;
  const shared = drv.regionSync === 'shared' ? (publisher.pagesShared?.() ?? true) : true;
  if (shared !== true) {
    // Refused now rather than mapped by programs into a copy the model would never see change.
    throw new DeviceError(
      'invalid',
      `${drv.name}: programs must map the very pages of its regions (regionSync 'shared'), which takes FUSE passthrough: ${shared}; run the daemon as root, outside a user namespace, without --no-passthrough`,
    );
  }
  try {
    inst.shared = DeviceRegions.create(`cdevemu:${inst.name}#${inst.generation}`, drv.regions?.(inst) ?? []);
    inst.mapsBypassFiles = inst.shared !== null && publisher.pagesShared?.() === true;
  } catch (err) {
    // A layout the model's options asked for (RegionSpec.option) is the
    // plugger's error, answered like a bad option; anything else a model bug.
    const optionsAtFault = (err instanceof RegionLayoutError && err.option !== undefined) || err instanceof Errno;
    if (!optionsAtFault) inst.log.error({ err, device: inst.name, model: drv.name }, 'model regions refused');
    throw new DeviceError('probe_failed', `${drv.name}: regions: ${describe(err)}`, { cause: err });
  }
  try {
    inst.state = await drv.create(inst, inst.options);
  } catch (err) {
    inst.shared?.drop();
    // An Errno is the model refusing its options, answered to whoever
    // plugged (a 400, a config error): not a fault of ours to log. Anything
    // else is a model bug.
    if (!(err instanceof Errno)) inst.log.error({ err, device: inst.name, model: drv.name }, 'model create failed');
    throw new DeviceError('probe_failed', `${drv.name}: create failed: ${describe(err)}`, { cause: err });
  }
  try {
    inst.published = { ...inst.published, nodePath: drv.nodePath?.(inst) ?? inst.name, size: inst.shared?.size ?? 0 };
    const attributes = guardAttributes(inst, drv.attributes?.(inst) ?? {});
    publisher.publish(inst.published, { open: (ctx) => openFile(inst, ctx) }, attributes);
  } catch (err) {
    // device_add() failing after a successful probe: undo the probe. The
    // instance was never visible, so no events and no references to wait for.
    inst.log.error({ err, device: inst.name, model: drv.name }, 'publishing the device failed');
    await inst.runModel('remove', () => drv.remove?.(inst));
    await inst.runModel('free', () => drv.free?.(inst));
    inst.shared?.drop();
    throw new DeviceError('probe_failed', `${inst.name}: publish failed: ${describe(err)}`, { cause: err });
  }
  const regions = inst.regions.map((r) => ({ name: r.name, size: r.size, offset: r.offset, onUnplug: r.onUnplug }));
  inst.record(CoreEvent.plugged, { model: drv.name, nodePath: inst.nodePath, ...(regions.length ? { regions } : {}) });
}

/**
 * show() and store() are model code: once unplug began they fail ENODEV
 * without calling the model (kernfs_get_active() fails once the node is
 * deactivated), so no model code runs after remove(). A store runs
 * through the op gate like an action, so unplug's drain waits for it.
 */
function guardAttributes<S>(inst: DeviceInstance<S>, attrs: Record<string, Attribute>): Record<string, Attribute> {
  const guarded: Record<string, Attribute> = {};
  for (const [path, value] of Object.entries(attrs)) {
    if (typeof value === 'string' || value === SYS_DIR) {
      guarded[path] = value;
      continue;
    }
    const showGuarded = (show: () => string) => (): string => {
      if (inst.lifecycle !== 'live') throw new Errno('ENODEV');
      try {
        return show();
      } catch (err) {
        throw inst.errnoOf(err, `attribute ${path}`);
      }
    };
    if (typeof value === 'function') {
      guarded[path] = showGuarded(value);
      continue;
    }
    const ops: AttributeOps = value;
    const store = ops.store?.bind(ops);
    guarded[path] = {
      show: ops.show ? showGuarded(ops.show.bind(ops)) : undefined,
      store: store
        ? (text: string) => {
            if (inst.lifecycle !== 'live') throw new Errno('ENODEV');
            return callModel(inst, CONTROL_CALL, `store:${path}`, null, null, text, (_file, t) => store(t));
          }
        : undefined,
    };
  }
  return guarded;
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
