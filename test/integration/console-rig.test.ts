import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { startConsoleVillage, type ConsoleVillageRig } from '../support/console-village.ts';

/**
 * The console village rig itself (test/support/console-village.ts), which the console's page tests stand on:
 * its player really records what the village plays, and a village with the console off serves nothing.
 */

const brokerUrl = inject('brokerUrl');
const protocolVersion = inject('brokerProtocolVersion');

/** A short silent 8 kHz mono 16-bit WAV. */
function silentWav(samples: number): Buffer {
  const data = Buffer.alloc(samples * 2);
  const header = Buffer.alloc(44);
  header.write('RIFF', 0);
  header.writeUInt32LE(36 + data.length, 4);
  header.write('WAVEfmt ', 8);
  header.writeUInt32LE(16, 16);
  header.writeUInt16LE(1, 20);
  header.writeUInt16LE(1, 22);
  header.writeUInt32LE(8000, 24);
  header.writeUInt32LE(16_000, 28);
  header.writeUInt16LE(2, 32);
  header.writeUInt16LE(16, 34);
  header.write('data', 36);
  header.writeUInt32LE(data.length, 40);
  return Buffer.concat([header, data]);
}

describe('the console village rig', () => {
  let village: ConsoleVillageRig;

  beforeAll(async () => {
    village = await startConsoleVillage({ brokerUrl, protocolVersion, villageId: 'console-rig' });
  }, 60_000);

  afterAll(async () => {
    await village?.stop();
  });

  it("records what reaches the player: a county announcement's text and a media file's bytes", async () => {
    const { villageId, county, signer } = village;
    const text = '村委会通知：今晚七点在村部开会。';
    await county.send(villageId, 'broadcast', await signer.broadcast({ aud: villageId, zones: ['committee'], content: { kind: 'tts', text } }));
    expect(await village.waitForTts((t) => t === text)).toBe(text);

    const wav = silentWav(800);
    writeFileSync(join(village.library, 'notice.wav'), wav);
    const sha256 = createHash('sha256').update(wav).digest('hex');
    await county.send(
      villageId,
      'broadcast',
      await signer.broadcast({ aud: villageId, zones: 'all', content: { kind: 'media', file: 'notice.wav', sha256 } }),
    );
    const played = await village.waitForMedia((name) => name === 'notice.wav');
    expect(readFileSync(played).equals(wav)).toBe(true);
    expect(village.ttsPlayed()).toEqual([text]);
  });
});

describe('the console village rig with the console off', () => {
  let village: ConsoleVillageRig;

  beforeAll(async () => {
    village = await startConsoleVillage({ brokerUrl, protocolVersion, villageId: 'console-rig-off', consoleEnabled: false });
  }, 60_000);

  afterAll(async () => {
    await village?.stop();
  });

  it('serves nothing on the console port', async () => {
    expect(village.service.logs.some((l) => l.msg === 'console listening')).toBe(false);
    const refused = await new Promise<string>((resolve) => {
      const socket = connect(village.port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve('connected');
      });
      socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? 'error'));
    });
    expect(refused).toBe('ECONNREFUSED');
  });
});
