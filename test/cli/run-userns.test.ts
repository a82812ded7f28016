/**
 * What the run started in an ordinary user's namespace takes from its
 * environment (daemon/run-userns.ts takeRunNamespace): what the command
 * outside told it, and nothing when it is root of the initial namespace,
 * where the variable can only have been planted. The refusals and the
 * run itself, with the real kernel, are in test/scenario/run-user.test.ts.
 */
import { expect, it } from 'vitest';
import { takeRunNamespace } from '../../daemon/run-userns.js';

it('takes nothing from its environment as root of the initial namespace, and leaves the variable to no program', () => {
  // What an ordinary user's run would be told, given to root (sudo -E keeps a user's environment).
  process.env.CDEVEMU_RUN_NAMESPACE = JSON.stringify({ uid: 0, gid: 0, dir: '/tmp/planted', dirProblem: null });
  expect(takeRunNamespace()).toBeNull();
  expect(process.env.CDEVEMU_RUN_NAMESPACE).toBeUndefined();
});
