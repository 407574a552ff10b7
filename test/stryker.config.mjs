// Mutation testing of the domain and the county command path against the unit tests (`npm run mutate`).
// Not part of CI: a full run takes about half an hour on two cores. Reports and Stryker's sandboxes go to reports/ (gitignored).
/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  mutate: [
    'src/alarm/**/*.ts',
    'src/broadcast/**/*.ts',
    // They spawn, signal and wait for real processes; test/integration/process-player.test.ts covers them.
    '!src/broadcast/process-player.ts',
    '!src/broadcast/process-group.ts',
    '!src/broadcast/process-output.ts',
    'src/county/command-gate.ts',
    'src/county/delivery.ts',
    'src/county/command-router.ts',
  ],
  testRunner: 'vitest',
  vitest: { configFile: 'test/vitest.mutate.config.ts' },
  coverageAnalysis: 'perTest',
  // Stryker rewrites the tsconfig's outward paths through TypeScript's JS API, which the native compiler (7.x)
  // does not have; ours point nowhere outside the sandbox, so no tsconfig is named and none is rewritten.
  tsconfigFile: '',
  reporters: ['clear-text', 'html', 'progress'],
  htmlReporter: { fileName: 'reports/mutation/index.html' },
  clearTextReporter: { allowColor: false, logTests: false },
  tempDirName: 'reports/stryker-tmp',
  cleanTempDir: 'always',
  // Concurrency is Stryker's default, one worker fewer than CPUs: `npm run mutate -- --concurrency N` to change it,
  // `-- --mutate src/county/delivery.ts` to run one file.
  thresholds: { high: 90, low: 80, break: null },
};
