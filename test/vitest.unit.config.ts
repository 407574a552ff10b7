import { defineConfig } from 'vitest/config';
import base from './vitest.config.ts';

// The unit tests alone: they use neither the shared broker nor dist/, so no globalSetup. Stryker runs them
// once per mutant (test/stryker.config.mjs), where a build and a Mosquitto start per run would dominate.
// (Spread, not mergeConfig: mergeConfig concatenates arrays, and would keep the full include and the setup.)
export default defineConfig({ ...base, test: { ...base.test, include: ['test/unit/**/*.test.ts'], globalSetup: [] } });
