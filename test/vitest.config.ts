import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // serialport's native code crashes under worker threads (HandleScope): one process per file.
    pool: 'forks',
    globalSetup: ['test/global-setup.ts'],
    // A CommonJS package's default import is its module.exports, as in Node and in the bundle production
    // runs (e.g. `mqtt/lib/client`'s is `{ default: MqttClient }`), not its `exports.default`.
    deps: { interopDefault: false },
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // CI reads a plain "N passed, N failed" line that .ci/run prints from this file.
    reporters: process.env['CI'] ? ['default', 'json'] : ['default'],
    outputFile: { json: '.vitest-results.json' },
  },
});
