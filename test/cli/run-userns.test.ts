/**
 * What `cdevemu run` says when this machine refuses an ordinary user the
 * user namespace it runs in (daemon/run-userns.ts): the switch that is off,
 * read from its sysctl, and the fix, in one line. The refusal itself, with
 * the real kernel, is in test/scenario/run-user.test.ts; here every switch
 * it knows is turned off in turn. And what the run started in the namespace
 * takes from its environment: nothing, when it is root.
 */
import { describe, expect, it } from 'vitest';
import { takeRunNamespace, userNamespaceRefusal } from '../../daemon/run-userns.js';

const HEAD = 'cdevemu run as an ordinary user runs in a user namespace of its own, which this machine refuses';
const EPERM = 'unshare: unshare failed: Operation not permitted\n';

const sysctls =
  (set: Record<string, string>) =>
  (name: string): string | null =>
    set[name] ?? null;

describe('a refused user namespace', () => {
  it.each([
    [
      { 'user.max_user_namespaces': '0' },
      'user namespaces are off (user.max_user_namespaces = 0); turn them on (sysctl -w user.max_user_namespaces=15000) or run as root',
    ],
    [
      { 'user.max_user_namespaces': '15000', 'kernel.unprivileged_userns_clone': '0' },
      'they are off for ordinary users (kernel.unprivileged_userns_clone = 0); turn them on (sysctl -w kernel.unprivileged_userns_clone=1) or run as root',
    ],
    [
      { 'kernel.unprivileged_userns_clone': '1', 'kernel.apparmor_restrict_unprivileged_userns': '1' },
      'AppArmor gives them no capabilities (kernel.apparmor_restrict_unprivileged_userns = 1); allow them (sysctl -w kernel.apparmor_restrict_unprivileged_userns=0, or an AppArmor profile for node with `userns,`) or run as root',
    ],
  ])('%j: names the switch and how to turn it', (set, why) => {
    expect(userNamespaceRefusal(EPERM, sysctls(set))).toBe(`${HEAD}: ${why}`);
  });

  it("with every switch on, unshare's own last line", () => {
    const on = sysctls({
      'user.max_user_namespaces': '15000',
      'kernel.unprivileged_userns_clone': '1',
      'kernel.apparmor_restrict_unprivileged_userns': '0',
    });
    expect(userNamespaceRefusal(EPERM, on)).toBe(`${HEAD} (unshare: unshare failed: Operation not permitted): run as root`);
    expect(userNamespaceRefusal('', on)).toBe(`${HEAD} (unshare failed): run as root`);
  });
});

describe('the run in the namespace', () => {
  it('takes nothing from its environment when it is root of the initial namespace, and leaves the variable to no program', () => {
    // What an ordinary user's run would be told, given to root (sudo -E keeps a user's environment).
    process.env.CDEVEMU_RUN_NAMESPACE = JSON.stringify({ uid: 0, gid: 0, dir: '/tmp/planted', dirProblem: null });
    expect(takeRunNamespace()).toBeNull();
    expect(process.env.CDEVEMU_RUN_NAMESPACE).toBeUndefined();
  });
});
