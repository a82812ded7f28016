/**
 * The tcmu-runner example scenarios through `cdevemu run` (the built CLI),
 * with the real tcmu-runner: kernel-order removal passes; surprise removal
 * fails naming tcmu-runner's pid and the fd it holds; SIGTERM after it
 * hangs and is killed within the scenario's bound; an orderly unplug with
 * tcmu-runner stopped passes once it is continued; a replug after a
 * surprise removal leaks generation 2; REMOVED_DEVICE with commands in its
 * I/O queue deadlocks it; a LUN RESET through the ring is marked unknown. Around every run the
 * host's /dev, /sys/class, /run and /etc are listed: nothing may change,
 * and nothing of the run (process, mount, namespace) may outlive it.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cdevemu, repoRoot } from '../helpers/cli.js';

const HOST_DIRS = ['/dev', '/sys/class', '/run', '/etc', '/etc/tcmu', '/sys/module', '/sys/kernel'];

/** Names in each host directory the preset must leave alone. */
function hostListing(): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const d of HOST_DIRS) out[d] = existsSync(d) ? readdirSync(d).sort() : [];
  return out;
}

interface Run {
  code: number | null;
  stdout: string;
  pid: number;
  scratch: string;
}

async function runExample(name: string): Promise<Run> {
  const before = hostListing();
  const r = await cdevemu(['run', join(repoRoot, 'examples', 'scenarios', `tcmu-runner-${name}.yaml`)], { timeoutMs: 110_000 });
  expect(hostListing()).toEqual(before);
  const pid = Number(/started .* \(pid (\d+)\)/.exec(r.stdout)?.[1]);
  const scratch = /on (\/\S+)\/mnt,/.exec(r.stdout)?.[1] ?? '';
  expect(pid, r.stdout + r.stderr).toBeGreaterThan(0);
  // Nothing of the run is left: the program (alone in its mount namespace,
  // so the namespace went with it), its mounts, its directory.
  expect(existsSync(`/proc/${pid}`)).toBe(false);
  expect(readFileSync('/proc/mounts', 'utf8')).not.toContain(scratch);
  expect(existsSync(scratch)).toBe(false);
  return { code: r.code, stdout: r.stdout, pid, scratch };
}

describe('tcmu-runner example scenarios', { timeout: 120_000 }, () => {
  it('kernel-order removal of a start-up and a hot-added device passes', async () => {
    const r = await runExample('kernel-order');
    expect(r.stdout).toContain('ok    wait event {"type":"netlink_done","device":"uio1","cmd":"ADDED_DEVICE_DONE","status":0}');
    expect(r.stdout).toContain('ok    wait event {"type":"netlink_done","device":"uio0","cmd":"REMOVED_DEVICE_DONE","status":0}');
    expect(r.stdout).toMatch(/^PASS /m);
    expect(r.code).toBe(0);
  });

  it('surprise removal fails with a leak report naming tcmu-runner and the fd it holds', async () => {
    const r = await runExample('surprise');
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('FAIL  expect uio0 released within 3000ms');
    expect(r.stdout).toMatch(new RegExp(`pid ${r.pid} \\(tcmu-runner\\) holds fd \\d+ \\(${r.scratch}/mnt/dev/uio0 \\(deleted\\)\\)`));
    // What tcmu-runner itself says, relayed from its log.
    expect(r.stdout).toMatch(/~ .*ppoll received unexpected revent/);
  });

  it('SIGTERM after a surprise removal hangs, and the run kills it within its bound', async () => {
    const r = await runExample('sigterm-hang');
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(`the program (pid ${r.pid}) is still running after 10000 ms`);
    expect(r.stdout).toContain('program was killed by SIGKILL');
    const total = Number(/\[\s*([\d.]+)s\] program was killed/.exec(r.stdout)?.[1]);
    expect(total).toBeLessThan(30); // the scenario's timeout
  });

  it('an orderly unplug waits, step by step, for tcmu-runner stopped past cmd_time_out; continued, it answers and lets go', async () => {
    const r = await runExample('stopped-unplug');
    const at = (line: string): number => r.stdout.indexOf(line);
    // The kernel's order, each step an event of the device; the count-0
    // expectations say what had not happened yet at that point: while
    // tcmu-runner is stopped the unplug waits for REMOVED_DEVICE_DONE (the
    // uio device not yet going), and REMOVED_DEVICE reaches tcmu-runner
    // only once it has completed every expired command (the scenario's
    // header: otherwise its own deadlock race decides the verdict).
    const order = [
      'ok    signal SIGSTOP to the program',
      'ok    wait event {"type":"tcmu_draining","device":"uio0","inflight":8}',
      'ok    wait event {"type":"tcmu_cmd_timeout","device":"uio0","where":"ring"}',
      'ok    wait event {"type":"tcmu_quiesced","device":"uio0","outstanding":0,"expired":{">=":8}}',
      'ok    wait event {"type":"netlink_sent","device":"uio0","cmd":"REMOVED_DEVICE"}',
      'ok    wait event {"type":"netlink_fault","device":"uio0","message":"REMOVED_DEVICE","mode":"hold"}',
      'ok    expect event {"type":"unplug_started","device":"uio0"}: count == 0',
      'ok    signal SIGCONT to the program',
      'ok    wait event {"type":"tcmu_expired_reaped","device":"uio0","left":0}',
      'ok    expect event {"type":"netlink_done","device":"uio0","cmd":"REMOVED_DEVICE_DONE"}: count == 0',
      'ok    action uio0 netlink_release',
      'ok    wait event {"type":"netlink_done","device":"uio0","cmd":"REMOVED_DEVICE_DONE","status":0}',
      'ok    wait event {"type":"tcmu_removed","device":"uio0","lost":0,"verifyErrors":0}',
      'ok    expect uio0 released within',
      'ok    expect 0 lateRelease(s) on uio0',
      'ok    expect program exit 0',
      'ok    unplug uio0 (background) ended',
    ];
    for (const line of order) expect(at(line), `${line}\n${r.stdout}`).toBeGreaterThan(0);
    expect(order.map(at)).toEqual([...order.map(at)].sort((a, b) => a - b));
    expect(r.stdout).toMatch(/^PASS /m);
    expect(r.code).toBe(0);
  });

  it('a replug after a surprise removal: REMOVED_DEVICE closes the stale generation, and generation 2 is leaked', async () => {
    const r = await runExample('replug-leak');
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('ok    wait event {"type":"netlink_done","device":"uio0","cmd":"REMOVED_DEVICE_DONE","status":0}');
    expect(r.stdout).toContain('FAIL  expect uio0 released within 3000ms');
    expect(r.stdout).toMatch(new RegExp(`pid ${r.pid} \\(tcmu-runner\\) holds fd \\d+ \\(${r.scratch}/mnt/dev/uio0 \\(deleted\\)\\) on generation 2,`));
    expect(r.stdout).not.toMatch(/on generation 1,/);
  });

  it('REMOVED_DEVICE with commands in its I/O queue (after cmd_time_out, the kernel order) deadlocks tcmu-runner: no DONE, killed', async () => {
    const r = await runExample('removed-deadlock');
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('ok    wait event {"type":"tcmu_quiesced","device":"uio0","outstanding":0}');
    expect(r.stdout).toContain('ok    signal SIGCONT to the program');
    // REMOVED_DEVICE reaches it while its I/O thread, held in its first kick, has the other commands queued behind it.
    expect(r.stdout).toContain('ok    wait event {"type":"fault_fired","device":"uio0","op":"write"}');
    expect(r.stdout.indexOf('ok    action uio0 netlink_release')).toBeGreaterThan(r.stdout.indexOf('ok    signal SIGCONT to the program'));
    expect(r.stdout).toContain('FAIL  wait event {"type":"netlink_done","device":"uio0","cmd":"REMOVED_DEVICE_DONE","status":0}');
    expect(r.stdout).toContain('program was killed by SIGKILL');
  });

  it('a LUN RESET through the ring: tcmu-runner 1.5.4 marks the TMR entry unknown and passes it with its next completion', async () => {
    const r = await runExample('tmr');
    expect(r.stdout).toContain('ok    wait event {"type":"tcmu_tmr_done","device":"uio0","function":"lun_reset"}');
    expect(r.stdout).toContain('ok    wait event {"type":"tcmu_tmr_reaped","device":"uio0","function":"lun_reset","unknownOp":true}');
    expect(r.stdout).toMatch(/^PASS /m);
    expect(r.code).toBe(0);
  });

  it('a lost REMOVED_DEVICE, unstuck with block_netlink and reset_netlink: the device goes, and tcmu-runner, never told, holds it', async () => {
    const r = await runExample('lost-removed');
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('ok    wait event {"type":"netlink_done","device":"uio0","cmd":"REMOVED_DEVICE_DONE","status":-4}');
    expect(r.stdout).toMatch(new RegExp(`pid ${r.pid} \\(tcmu-runner\\) holds fd \\d+ \\(${r.scratch}/mnt/dev/uio0 \\(deleted\\)\\) on generation 1,`));
  });

  it('tcmu-runner restarted under a workload reopens its device (block_dev, reset_ring) and keeps every acknowledged write, judged by value', async () => {
    const r = await runExample('restart');
    expect(r.stdout).toMatch(/started .* \(pid \d+, instance 2\)/);
    expect(r.stdout).toContain('ok    expect event {"type":"tcmu_reset_ring","device":"uio0"}: count == 1; level == 1');
    expect(r.stdout).toContain('ok    expect result after: verifyErrors == 0, lost == 0, acknowledgedWrites > 0, verifiedReads > 0, completed >= 200');
    expect(r.stdout).toMatch(/^PASS /m);
    expect(r.code).toBe(0);
  });
});
