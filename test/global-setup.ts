import { execFileSync } from 'node:child_process';
import type { TestProject } from 'vitest/node';
import { startBroker, type BrokerKind } from './support/broker.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    /** The run's shared broker; tests that stop or restart a broker start their own (support/broker.ts). */
    brokerUrl: string;
    brokerKind: BrokerKind;
    /** The newest MQTT version the shared broker speaks: 5 for Mosquitto, 4 for aedes. */
    brokerProtocolVersion: 4 | 5;
  }
}

/**
 * One broker for the whole run: started here so a crashed test worker cannot leak it (TOOLCHAIN.md).
 * dist/ is built here too, once, before any test runs: the tests that run the bundle production runs
 * (support/service-process.ts `fromBuild`) must not see another file's build replace it under them.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  execFileSync('npm', ['run', 'build', '--silent'], { cwd: new URL('../', import.meta.url).pathname, stdio: 'inherit', timeout: 120_000 });
  const broker = await startBroker();
  project.provide('brokerUrl', broker.url);
  project.provide('brokerKind', broker.kind);
  project.provide('brokerProtocolVersion', broker.protocolVersion);
  return async () => {
    await broker.stop();
  };
}
