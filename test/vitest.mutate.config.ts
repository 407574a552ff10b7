import { defineConfig } from 'vitest/config';
import base from './vitest.config.ts';

// The unit tests as Stryker runs them (test/stryker.config.mjs), once per mutant: no globalSetup, since they
// need neither dist/ nor the broker, and a build and a Mosquitto start per run would dominate.
// Stryker's vitest runner forces `pool: 'threads'`, where process.umask() cannot be set, so keys.test.ts
// (key file modes under several umasks) is left out; it tests keys.ts, which is not mutated. The gate's fuzz
// test is left out too: it covers nearly every mutant of command-gate.ts and runs 10,000 inputs for each.
// Spread, not mergeConfig: mergeConfig concatenates arrays, and would keep the full include and the setup.
export default defineConfig({
  ...base,
  test: {
    ...base.test,
    include: ['test/unit/**/*.test.ts'],
    exclude: ['test/unit/keys.test.ts', 'test/unit/command-gate-fuzz.test.ts'],
    globalSetup: [],
  },
});
