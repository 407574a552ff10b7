import type { TestProject } from 'vitest/node';

/** Shared services for the whole run (the MQTT broker) are started here; see test/support/broker.ts. */
export default async function setup(_project: TestProject): Promise<() => Promise<void>> {
  return async () => {};
}
