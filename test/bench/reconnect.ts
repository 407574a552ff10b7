import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createVillageEdge } from '../../src/app.ts';
import { parseConfig } from '../../src/config/load.ts';
import type { AlarmPayload } from '../../src/contract/payloads.ts';
import { startBroker, type BrokerKind } from '../support/broker.ts';
import { connectCounty } from '../support/county.ts';
import { createCountySigner } from '../support/county-signer.ts';
import { waitFor } from '../support/wait.ts';
import { villageConfigJson, countyLinkUp } from '../support/village.ts';
import { BenchFailure } from './figures.ts';
import { percentile } from '../support/stats.ts';
import { LogTap } from './log-tap.ts';
import { Teardown } from './teardown.ts';

export interface ReconnectResult {
  brokerKind: BrokerKind;
  outages: number;
  /** Broker listening again → the alarm raised during the outage received by the county. */
  backToDelivered: { p50: number; p99: number; max: number };
  outageS: { min: number; max: number };
}

const VILLAGE = 'bench-reconnect';

/**
 * Broker back → the alarms raised while it was down reach the county, over `outages` real outages of a
 * real broker (2-20 s each, random), with the shipped reconnect backoff (1 s doubling to 30 s): an alarm
 * waiting caps the wait between attempts at 2 s.
 */
export async function measureReconnect(options: { outages: number; seed: number; progress: (text: string) => void }): Promise<ReconnectResult> {
  const teardown = new Teardown();
  try {
    const broker = await startBroker();
    teardown.add('broker', () => broker.stop());
    const signer = await createCountySigner({ villageId: VILLAGE });
    const dataDir = mkdtempSync(join(tmpdir(), 've-bench-reconnect-'));
    teardown.add('data folder', () => rmSync(dataDir, { recursive: true, force: true }));
    const json = villageConfigJson({
      villageId: VILLAGE,
      brokerUrl: broker.url,
      protocolVersion: broker.protocolVersion,
      columns: 1,
      dataDir,
      commandKeys: [signer.keyEntry],
    });
    const parsed = parseConfig({ ...json, timing: { ...json.timing, retry: { initialMs: 5000, maxMs: 60000 } } });
    if (!parsed.ok) throw new BenchFailure(`bench config invalid: ${parsed.errors.join('; ')}`);
    const tap = new LogTap('info');
    const app = createVillageEdge({ config: parsed.config, version: 'bench', logger: tap.logger, env: {} });
    await app.start();
    teardown.add('service', () => app.stop());
    await waitFor('the county link', countyLinkUp(app), 10_000);

    let random = options.seed >>> 0;
    const next = () => {
      random = (random * 1664525 + 1013904223) >>> 0;
      return random / 2 ** 32;
    };
    const delivered: number[] = [];
    const outages: number[] = [];
    for (let round = 1; round <= options.outages; round++) {
      await broker.stop();
      await waitFor('the link down', async () => !(await app.status()).link.connected, 20_000);
      const outageMs = 2000 + next() * 18_000;
      const downAt = performance.now();
      // The press comes at a random moment of the outage, so the backoff has grown to all sorts of waits.
      await sleep(next() * outageMs);
      app.devices.simulated('column-1')!.press();
      await waitFor('the alarm stored', async () => (await app.status()).health.outbox.alarm === 1, 5000);
      await sleep(Math.max(0, outageMs - (performance.now() - downAt)));
      await broker.restart();
      const backAt = performance.now();
      const county = await connectCounty({ url: broker.url, protocolVersion: broker.protocolVersion, autoAck: true, signer });
      try {
        let receivedAt = 0;
        await county.waitFor((m) => {
          if (m.kind !== 'alarm' || (m.payload as Partial<AlarmPayload>).terminal !== 'column-1') return false;
          receivedAt = m.receivedAt;
          return true;
        }, 60_000);
        delivered.push(receivedAt - backAt);
        outages.push(outageMs / 1000);
        await waitFor('the alarm acked', async () => (await app.status()).health.outbox.alarm === 0, 10_000);
      } finally {
        await county.close();
      }
      options.progress(
        `reconnect: outage ${round}/${options.outages} (${(outageMs / 1000).toFixed(1)} s): delivered ${delivered.at(-1)!.toFixed(0)} ms after the broker was back`,
      );
      await waitFor('the link up again', countyLinkUp(app), 10_000);
    }
    return {
      brokerKind: broker.kind,
      outages: delivered.length,
      backToDelivered: { p50: percentile(delivered, 50), p99: percentile(delivered, 99), max: Math.max(...delivered) },
      outageS: { min: Math.min(...outages), max: Math.max(...outages) },
    };
  } finally {
    for (const problem of await teardown.run()) console.error(`reconnect: ${problem}`);
  }
}
