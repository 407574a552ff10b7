import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidInputError } from '../../src/platform/schema-errors.ts';
import { mosquittoAvailable, requireMosquittoUnderCi, startMosquittoTls, type TestBroker } from '../support/broker.ts';
import { connectCounty } from '../support/county.ts';
import { messagesOf, nextEvent, sampleAlarm, testLink } from '../support/link-fixtures.ts';
import { generateTestPki, type TestPki } from '../support/tls.ts';
import { waitFor } from '../support/wait.ts';

requireMosquittoUnderCi();

describe('county link TLS configuration', () => {
  it('refuses to start when a TLS file is missing, naming the field', () => {
    const { link } = testLink({
      url: 'mqtts://127.0.0.1:1',
      protocolVersion: 4,
      county: { tls: { ca: 'ca.crt' } },
      configDir: '/nonexistent-village-edge',
    });
    expect(() => link.start()).toThrow(InvalidInputError);
    expect(() => link.start()).toThrow(/^county\.tls\.ca: cannot read \/nonexistent-village-edge\/ca\.crt \(.*ENOENT/);
  });

  it('refuses TLS settings on a plain mqtt:// url instead of silently not using them', () => {
    const { link } = testLink({ url: 'mqtt://127.0.0.1:1', protocolVersion: 4, county: { tls: { ca: '/etc/hostname' } } });
    expect(() => link.start()).toThrow(/^county\.tls: is set, but county\.url uses mqtt:/);
  });
});

describe.skipIf(!mosquittoAvailable())('county link over TLS to Mosquitto', () => {
  let pki: TestPki;
  let broker: TestBroker;
  let rogue: TestBroker;

  beforeAll(async () => {
    pki = await generateTestPki();
    [broker, rogue] = await Promise.all([
      startMosquittoTls({ ca: pki.ca, ...pki.server }),
      // Presents a certificate from a CA the village never heard of; it would accept the client's certificate.
      startMosquittoTls({ ca: pki.ca, ...pki.rogueServer }),
    ]);
  });
  afterAll(async () => {
    await Promise.all([broker?.stop(), rogue?.stop()]);
    pki?.cleanup();
  });

  it('connects with the configured CA and client certificate (paths relative to the config folder) and publishes', async () => {
    const desk = await connectCounty({
      url: broker.url,
      protocolVersion: 5,
      tls: { ca: readFileSync(pki.ca), cert: readFileSync(pki.client.cert), key: readFileSync(pki.client.key) },
    });
    const { link, village } = testLink({
      url: broker.url,
      protocolVersion: 5,
      county: { tls: { ca: 'ca.crt', cert: 'client.crt', key: 'client.key' } },
      configDir: pki.dir,
    });
    try {
      const connected = nextEvent(link, 'connected');
      link.start();
      await connected;
      const alarm = sampleAlarm(village);
      await link.publish('alarm', alarm);
      const got = await desk.waitFor((m) => m.kind === 'alarm' && m.village === village);
      expect(got.payload).toEqual(alarm);
    } finally {
      await link.stop();
      await desk.close();
    }
  });

  it('never connects to a server whose certificate the configured CA did not sign, and logs why', async () => {
    const { link, lines } = testLink({
      url: rogue.url,
      protocolVersion: 5,
      county: { tls: { ca: pki.ca, cert: pki.client.cert, key: pki.client.key } },
    });
    let connected = false;
    link.on('connected', () => {
      connected = true;
    });
    try {
      link.start();
      // It keeps trying (the county may fix its certificate) and every attempt fails the same way.
      const attempts = (): number => lines.filter((l) => l.msg === 'county link reconnecting').length;
      await waitFor('three reconnect attempts', () => attempts() >= 3, { timeoutMs: 5000, intervalMs: 20 });
      expect(connected).toBe(false);
      expect(link.connected).toBe(false);
      expect(messagesOf(lines)).toContain('county link error: unable to verify the first certificate (UNABLE_TO_VERIFY_LEAF_SIGNATURE)');
    } finally {
      await link.stop();
    }
  });
});
