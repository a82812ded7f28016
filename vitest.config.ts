import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
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
  },
});
