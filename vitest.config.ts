import { defineConfig } from 'vitest/config';
import { skippedFiles, unitTests } from './test/suites.mjs';

export default defineConfig({
  test: {
    globalSetup: ['test/helpers/global-setup.ts'],
    // Each file serves its mounts from its own process; two at a time on a 2-core machine.
    pool: 'forks',
    maxWorkers: 2,
    // test/fuse/session.test.ts collects an abandoned request's promise to
    // show that the session answers it EIO.
    execArgv: ['--expose-gc'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    teardownTimeout: 20_000,
    // `npm run test:unit` runs the unit project alone: no root, no FUSE.
    // The integration project leaves out what this machine and user cannot
    // run (test/suites.mjs; `npm test`'s check names them and why).
    projects: [
      { extends: true, test: { name: 'unit', include: unitTests } },
      { extends: true, test: { name: 'integration', include: ['test/**/*.test.ts'], exclude: [...unitTests, ...skippedFiles()] } },
    ],
  },
});
