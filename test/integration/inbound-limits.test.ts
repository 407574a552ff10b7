import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { spawn } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, ftruncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { villageTopics } from '../../src/county/topics.ts';
import { connectCounty, type CountyClient } from '../support/county.ts';
import { createCountySigner, type CountySigner } from '../support/county-signer.ts';
import { createMemoryCgroup } from '../support/memory-cgroup.ts';
import { fromBuild, startService, writeConfig, type ServiceProcess } from '../support/service-process.ts';
import { productionNodeFlags } from '../support/systemd-unit.ts';
import { villageConfigJson } from '../support/village.ts';

/**
 * One oversized message must not crash-loop the service: a ~150 MB QoS 1 PUBLISH on cmd/broadcast was
 * buffered whole, the unit's MemoryMax=256M killed the service, and the broker sent it again on every
 * reconnect. Here the built service runs as the unit runs it, under the same limit, with Mosquitto's own
 * client throwing the message at it while villagers press buttons.
 */

const brokerUrl = inject('brokerUrl');
const MEMORY_MAX = 256 * 1024 * 1024;
const HUGE_BYTES = 150 * 1024 * 1024;

let dir: string;
let hugeFile: string;
let signer: CountySigner;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 've-inbound-'));
  hugeFile = join(dir, 'huge.bin');
  // Sparse: the bytes only exist in mosquitto_pub's memory, and then in the broker's.
  const fd = openSync(hugeFile, 'w');
  ftruncateSync(fd, HUGE_BYTES);
  closeSync(fd);
  signer = await createCountySigner({ villageId: 'unused' });
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** mosquitto_pub: a client we did not write, publishing the whole file as one QoS 1 message. */
function publishFile(topic: string, file: string): Promise<number | null> {
  const { hostname, port } = new URL(brokerUrl);
  const child = spawn('mosquitto_pub', ['-h', hostname, '-p', port, '-q', '1', '-t', topic, '-f', file], { stdio: ['ignore', 'ignore', 'inherit'] });
  return new Promise((resolve, reject) => {
    child.once('error', (error) => reject(new Error(`mosquitto_pub: ${error.message} (Debian package mosquitto-clients)`)));
    child.once('exit', (code) => resolve(code));
  });
}

function peakRssMb(pid: number): number {
  const kb = Number(/^VmHWM:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);
  return Math.round(kb / 102.4) / 10;
}

describe("an oversized message under the unit's memory limit", () => {
  for (const protocolVersion of [4, 5] as const) {
    it(`MQTT ${protocolVersion === 4 ? '3.1.1' : '5'}: a 150 MB command is ${protocolVersion === 4 ? 'discarded unread and reported' : 'never sent by the broker'}, and alarms get through throughout`, async () => {
      const villageId = `huge-v${protocolVersion}`;
      const county: CountyClient = await connectCounty({ url: brokerUrl, protocolVersion, autoAck: true, signer });
      const cgroup = createMemoryCgroup(`ve-test-${villageId}`, MEMORY_MAX);
      const configPath = writeConfig(
        mkdtempSync(join(dir, `${villageId}-`)),
        villageConfigJson({
          villageId,
          brokerUrl,
          protocolVersion,
          commandKeys: [signer.keyEntry],
          columns: 2,
          dataDir: join(dir, `${villageId}-data`),
        }),
      );
      let service: ServiceProcess | undefined;
      try {
        service = startService(configPath, undefined, fromBuild(productionNodeFlags()));
        const pid = service.child.pid!;
        cgroup.add(pid);
        await county.waitFor((m) => m.kind === 'state' && m.village === villageId && (m.payload as { online: boolean }).online, 20_000);
        await service.waitForLog((l) => l.msg === 'county link connected');

        const published = publishFile(villageTopics('village-edge', villageId).topic('broadcast'), hugeFile);
        published.catch(() => undefined);
        service.send('press column-1');
        await county.waitFor(
          (m) => m.kind === 'alarm' && m.village === villageId && (m.payload as { terminal: string }).terminal === 'column-1',
          20_000,
        );
        expect(await published).toBe(0);
        if (protocolVersion === 4) {
          const report = await county.waitFor((m) => m.kind === 'report' && m.village === villageId, 30_000);
          expect((report.payload as { event: string; reason: string }).event).toBe('rejected');
          expect((report.payload as { reason: string }).reason).toMatch(new RegExp(`^oversized: payload of ${HUGE_BYTES - 0} bytes`));
        }
        // After it, on the same connection and the same process: a press is relayed and acked.
        service.send('press column-2');
        await county.waitFor(
          (m) => m.kind === 'alarm' && m.village === villageId && (m.payload as { terminal: string }).terminal === 'column-2',
          20_000,
        );
        await service.waitForLog((l) => l.msg === 'alarm acknowledged by county' && l['terminal'] === 'column-2', 20_000).catch(() => undefined);
        expect(service.child.exitCode).toBeNull();
        expect(service.child.signalCode).toBeNull();
        expect(cgroup.oomKills()).toBe(0);
        expect(service.logs.filter((l) => l.msg === 'county link down')).toEqual([]);
        console.log(`MQTT ${protocolVersion}: 150 MB message, service peak RSS (VmHWM) ${peakRssMb(pid)} MB`);

        // Acknowledged, so not sent again: a restart brings no second copy.
        expect(await service.terminate()).toBe(0);
        service = startService(configPath, undefined, fromBuild(productionNodeFlags()));
        cgroup.add(service.child.pid!);
        await service.waitForLog((l) => l.msg === 'county link connected');
        service.send('press column-1');
        await service.waitForLog((l) => l.msg === 'alarm acknowledged by county', 20_000);
        expect(county.messages.filter((m) => m.kind === 'report' && m.village === villageId)).toHaveLength(protocolVersion === 4 ? 1 : 0);
      } finally {
        await service?.terminate().catch(() => undefined);
        cgroup.remove();
        await county.close();
      }
    }, 120_000);
  }
});
