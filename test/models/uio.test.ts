/**
 * uio model on a real mount: a tcmu-style consumer counts interrupts raised
 * through the API, sees the -EIO poll mask after unplug and closes
 * (lateRelease); read/write sizes, O_NONBLOCK and irqcontrol; sysfs.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { POLLERR, POLLHUP, POLLIN, POLLOUT } from '../../src/devio.js';
import { UIO_POLL_GONE } from '../../src/models/uio.js';
import { startTestEmulator, type TestEmulator } from '../helpers/emulator.js';
import { pythonInteractive, run } from '../helpers/proc.js';
import { Holder, readBlocked, le32 } from './holder.js';

let t: TestEmulator;
beforeAll(async () => {
  t = await startTestEmulator([], 1000);
});
afterAll(() => t.emu.stop({ releaseTimeoutMs: 0 }));

const plug = async (options: Record<string, unknown> = {}) => {
  const inst = await t.emu.devices.plug({ model: 'uio', name: 'uio%d', options });
  return { inst, name: inst.name, path: t.path(`dev/${inst.name}`) };
};

/** tcmu-runner's loop: poll for POLLIN, read the count, write 1 to re-arm; on anything else print revents and close. */
const consumer = `import os,sys,select,struct
fd = os.open(sys.argv[1], os.O_RDWR | os.O_NONBLOCK)
p = select.poll(); p.register(fd, select.POLLIN)
print("ready", flush=True)
while True:
    ev = p.poll(10000)
    if not ev:
        print("timeout", flush=True); break
    rev = ev[0][1]
    if rev != select.POLLIN:
        print("revents", rev, flush=True); break
    try:
        count = struct.unpack("i", os.read(fd, 4))[0]
    except OSError as e:
        print("read", e.errno, flush=True); break
    os.write(fd, struct.pack("i", 1))
    print("irq", count, flush=True)
os.close(fd)
print("closed", flush=True)`;

describe('uio', () => {
  it('a tcmu-style consumer counts interrupts, then sees POLLIN|POLLERR|POLLHUP on unplug and closes (lateRelease)', async () => {
    const d = await plug({ oneShot: true });
    const c = pythonInteractive(consumer, [d.path]);
    expect(await c.line()).toBe('ready');
    for (let i = 1; i <= 3; i++) {
      await t.emu.devices.action(d.name, 'irq');
      expect(await c.line()).toBe(`irq ${i}`);
    }
    // Two at once: with oneShot the second is held while the line is masked and
    // delivered when the consumer re-arms it, so neither is lost.
    await t.emu.devices.action(d.name, 'irq');
    await t.emu.devices.action(d.name, 'irq');
    expect(await c.line()).toBe('irq 4');
    expect(await c.line()).toBe('irq 5');
    expect(d.inst.counters.lateReleases).toBe(0);
    await t.emu.devices.unplug(d.name);
    expect(await c.line()).toBe(`revents ${POLLIN | POLLERR | POLLHUP}`);
    expect(await c.line()).toBe('closed');
    await t.waitEvent((e) => e.device === d.name && e.generation === d.inst.generation && e.type === 'late_released');
    expect(d.inst.counters.lateReleases).toBe(1);
    expect(d.inst.counters.releases).toBe(0);
  });

  it('the -EIO mask is every bit but POLLOUT, as the kernel casts it', () => {
    expect(UIO_POLL_GONE).toBe(0xfffb);
    expect(UIO_POLL_GONE & POLLOUT).toBe(0);
    expect(UIO_POLL_GONE & (POLLIN | POLLERR | POLLHUP)).toBe(POLLIN | POLLERR | POLLHUP);
  });

  it('read and write take exactly 4 bytes; O_NONBLOCK read is EAGAIN until an interrupt; poll follows the count', async () => {
    const d = await plug();
    const h = await Holder.open(d.path);
    expect(await h.op('read 8')).toBe('EINVAL');
    expect(await h.op('write 0100')).toBe('EINVAL');
    expect(await h.op(`poll ${POLLIN} 0`)).toBe('ok 0');
    expect(await h.op('nonblock')).toBe('ok');
    expect(await h.op('read 4')).toBe('EAGAIN');
    await t.emu.devices.action(d.name, 'irq');
    expect(await h.op(`poll ${POLLIN} 1000`)).toBe(`ok ${POLLIN}`);
    expect(await h.op('read 4')).toBe(`ok ${le32(1)}`);
    expect(await h.op('read 4')).toBe('EAGAIN');
    // irqcontrol(0): an interrupt now stays pending until irqcontrol(1).
    expect(await h.op(`write ${le32(0)}`)).toBe('ok 4');
    expect(await t.emu.devices.action(d.name, 'irq')).toEqual({ count: 1, delivered: false });
    expect(await h.op('read 4')).toBe('EAGAIN');
    expect(await h.op(`write ${le32(1)}`)).toBe('ok 4');
    expect(await h.op('read 4')).toBe(`ok ${le32(2)}`);
    await h.close();
  });

  it('a blocking read sleeps until the irq action, and each open file has its own last-seen count', async () => {
    const d = await plug();
    await t.emu.devices.action(d.name, 'irq'); // count 1 before either opens: neither sees it
    const a = await Holder.open(d.path);
    const b = await Holder.open(d.path);
    a.send('read 4');
    await readBlocked(d.inst);
    await t.emu.devices.action(d.name, 'irq');
    expect(await a.line()).toBe(`ok ${le32(2)}`);
    expect(await b.op('read 4')).toBe(`ok ${le32(2)}`);
    await a.close();
    await b.close();
  });

  it('publishes name, version, event and map0 in sys/class/uio', async () => {
    const d = await plug({ name: 'tcm-user', version: '2.0', mapSize: 0x100000 });
    await t.emu.devices.action(d.name, 'irq');
    const dir = t.path(`sys/class/uio/${d.name}`);
    const r = await run('sh', ['-c', `cd ${dir} && cat name version event maps/map0/size maps/map0/addr maps/map0/offset`]);
    expect(r.stdout).toBe('tcm-user\n2.0\n1\n0x0000000000100000\n0x0000000000000000\n0x0\n');
  });

  it('refuses bad options by name', async () => {
    await expect(t.emu.devices.plug({ model: 'uio', name: 'uio%d', options: { mapSize: -1 } })).rejects.toThrow(/mapSize/);
    await expect(t.emu.devices.plug({ model: 'uio', name: 'uio%d', options: { colour: 1 } })).rejects.toThrow('uio: option colour is unknown; known: name, version, oneShot, mapSize, mapAddr, maps');
  });

  it('after unplug: a 4-byte read EIO and one of another size EINVAL (uio_read() checks the size first), a 4-byte write EINVAL (uio_write() once idev->info is NULL), ioctl ENOTTY (no ->unlocked_ioctl), poll the -EIO mask, close is a late release', async () => {
    const d = await plug();
    const h = await Holder.open(d.path);
    const blocked = await Holder.open(d.path);
    blocked.send('read 4');
    await readBlocked(d.inst);
    await t.emu.devices.unplug(d.name);
    // uio_read() woken by uio_unregister_device(), and one made after it: EIO.
    expect(await blocked.line()).toBe('EIO');
    expect(await h.op('read 4')).toBe('EIO');
    // The size is checked before idev->info: EINVAL, as before the unplug.
    for (const size of [8, 2]) expect(`read ${size}: ${await h.op(`read ${size}`)}`).toBe(`read ${size}: EINVAL`);
    expect(await h.op(`write ${le32(1)}`)).toBe('EINVAL');
    expect(await h.op('ioctl 0x80047501 4')).toBe('ENOTTY'); // uio_fops has no ioctl: vfs_ioctl()'s ENOTTY, device or not
    expect(await h.op(`poll ${POLLIN | POLLOUT} 0`)).toBe(`ok ${POLLIN | POLLERR | POLLHUP}`);
    await h.close();
    await blocked.close();
    await t.waitEvent((e) => e.device === d.name && e.generation === d.inst.generation && e.type === 'freed');
    expect(d.inst.counters.lateReleases).toBe(2);
  });
});
