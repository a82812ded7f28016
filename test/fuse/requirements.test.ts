/**
 * The machine checks behind `npm start`, `npm test` and the daemon's start
 * (src/fuse/requirements.js): fuse.conf read as fusermount3 reads it,
 * fusermount3 found on the PATH, and why user namespaces are closed,
 * named by the sysctl that closes them.
 */
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { allowsUserAllowOther, findFusermount, userNamespaceProblem } from '../../src/fuse/requirements.js';

it('reads user_allow_other as fusermount3 does: a line of its own, comments and blanks aside', () => {
  expect(allowsUserAllowOther('user_allow_other\n')).toBe(true);
  expect(allowsUserAllowOther('# mine\n  user_allow_other   # for gpsd\nmount_max = 1000\n')).toBe(true);
  expect(allowsUserAllowOther('#user_allow_other\n')).toBe(false); // Debian's default
  expect(allowsUserAllowOther('user_allow_others\n')).toBe(false);
  expect(allowsUserAllowOther('')).toBe(false);
});

it('finds fusermount3 on the PATH first, an executable file only', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'cdevemu-fusermount-'));
  try {
    const bin = join(dir, 'bin');
    const plain = join(dir, 'plain');
    await Promise.all([mkdir(bin), mkdir(plain)]);
    await writeFile(join(bin, 'fusermount3'), '#!/bin/sh\n');
    await chmod(join(bin, 'fusermount3'), 0o755);
    await writeFile(join(plain, 'fusermount3'), 'not executable');
    expect(findFusermount(`relative/dir:${plain}:${bin}`)).toBe(join(bin, 'fusermount3'));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

it('names the sysctl that closes user namespaces, with the fix; else what the probe said', () => {
  const sysctls = (values: Record<string, string>) => (name: string) => values[name] ?? null;
  const neverProbed = (): string | null => {
    throw new Error('the probe runs only when no sysctl explains');
  };
  expect(userNamespaceProblem(sysctls({ 'kernel.unprivileged_userns_clone': '0' }), neverProbed)).toBe(
    'user namespaces are closed to this user (kernel.unprivileged_userns_clone=0): as root, sysctl -w kernel.unprivileged_userns_clone=1',
  );
  expect(userNamespaceProblem(sysctls({ 'kernel.unprivileged_userns_clone': '1', 'user.max_user_namespaces': '0' }), neverProbed)).toBe(
    'user namespaces are closed to this user (user.max_user_namespaces=0): as root, sysctl -w user.max_user_namespaces=15000',
  );
  expect(userNamespaceProblem(sysctls({ 'user.max_user_namespaces': '63000', 'kernel.apparmor_restrict_unprivileged_userns': '1' }), neverProbed)).toBe(
    'user namespaces are closed to this user (kernel.apparmor_restrict_unprivileged_userns=1): as root, sysctl -w kernel.apparmor_restrict_unprivileged_userns=0',
  );
  expect(userNamespaceProblem(sysctls({ 'user.max_user_namespaces': '63000' }), () => 'unshare: unshare failed: Operation not permitted')).toBe(
    'cannot make a user namespace (unshare -Urm: unshare: unshare failed: Operation not permitted): check the sysctls user.max_user_namespaces and kernel.apparmor_restrict_unprivileged_userns',
  );
  expect(userNamespaceProblem(sysctls({}), () => null)).toBeNull();
});

