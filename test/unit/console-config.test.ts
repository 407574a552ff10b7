import { describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { configSchema } from '../../src/config/schema.ts';
import { preflight } from '../../src/config/preflight.ts';
import { safeBack } from '../../src/console/http/route-context.ts';
import { html } from '../../src/console/pages/html.ts';

const base = {
  version: 2,
  dataDir: '/tmp/ve',
  village: { id: 'v1', name: 'V', location: { lat: 1, lon: 2 } },
  county: { url: 'mqtt://127.0.0.1:1883', commandsDisabled: true },
};

describe('console config', () => {
  it('is off by default, on loopback, with a lock-out and an eight-hour session', () => {
    const config = configSchema.parse(base);
    expect(config.console).toEqual({
      enabled: false,
      host: '127.0.0.1',
      port: 8080,
      usersFile: 'console-users.json',
      sessionMinutes: 480,
      lockout: { maxFailures: 5, baseSeconds: 30, maxSeconds: 900 },
      maxRecordingSeconds: 120,
    });
  });

  it('check-config warns about an office address without TLS and fails on TLS files it cannot read', () => {
    const dir = mkdtempSync(join(tmpdir(), 've-console-config-'));
    const env = { configPath: join(dir, 'config.json') };
    const plain = configSchema.parse({ ...base, dataDir: dir, console: { enabled: true, host: '192.168.1.2' } });
    expect(preflight(plain, env).warnings).toContain(
      'console.host: 192.168.1.2 without console.tls: passwords and session cookies cross the network in clear; give console.tls a certificate',
    );
    const loopback = configSchema.parse({ ...base, dataDir: dir, console: { enabled: true } });
    expect(preflight(loopback, env).warnings.filter((w) => w.startsWith('console'))).toEqual([]);
    const cert = join(dir, 'cert.pem');
    writeFileSync(cert, 'x');
    const tls = configSchema.parse({
      ...base,
      dataDir: dir,
      console: { enabled: true, host: '0.0.0.0', tls: { cert, key: join(dir, 'missing.pem') } },
    });
    const report = preflight(tls, env);
    expect(report.errors.filter((e) => e.startsWith('console'))).toEqual([expect.stringMatching(/^console\.tls\.key: .*missing\.pem/)]);
    expect(report.warnings.filter((w) => w.startsWith('console'))).toEqual([]);
  });

  it('names the field and the reason for a bad console section', () => {
    const result = configSchema.safeParse({ ...base, console: { enabled: true, port: 70000, sessionMinutes: 0 } });
    expect(result.success).toBe(false);
    expect(result.error?.issues.map((i) => i.path.join('.'))).toEqual(['console.port', 'console.sessionMinutes']);
  });

  it('sends the browser back only to a path of this site after sign-in or a language switch', () => {
    expect(safeBack('/alarms?x=1')).toBe('/alarms?x=1');
    for (const elsewhere of ['//evil.example/', '/\\evil.example', 'https://evil.example/', 'javascript:alert(1)', '', undefined])
      expect(safeBack(elsewhere)).toBe('/status');
  });

  it('escapes every value put into a page unless it is markup made by the same tag', () => {
    const label = '<script>alert("x")</script> & \'quotes\'';
    expect(html`<td>${label}</td>`.text).toBe('<td>&#60;script&#62;alert(&#34;x&#34;)&#60;/script&#62; &#38; &#39;quotes&#39;</td>');
    expect(html`<ul>${['a<', html`<b>b</b>`]}</ul>`.text).toBe('<ul>a&#60;<b>b</b></ul>');
    expect(html`${null}${undefined}${false}${0}`.text).toBe('0');
  });
});
