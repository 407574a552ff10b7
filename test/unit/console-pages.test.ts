import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { consoleConfigSchema } from '../../src/config/schema.ts';
import { accountWith, hashPassword, writeAccounts } from '../../src/console/auth/accounts.ts';
import { ConsoleServer } from '../../src/console/http/console-server.ts';
import type { ActionResult, AlarmView, BroadcastView, ConsoleVillage, DeviceDiagnostics, ProgrammesView } from '../../src/console/types.ts';
import { isoWithOffset } from '../../src/platform/time.ts';
import { statusDocumentSchema, type StatusDocument } from '../../src/status/status-document.ts';
import { ConsolePagesClient } from '../support/console-pages-client.ts';
import { memoryLogger } from '../support/log-sink.ts';
import { scratchFolder } from '../support/scratch-folder.ts';

const assetsDir = new URL('../../src/console/assets/', import.meta.url).pathname;
const hostile = '<script>alert(1)</script>';
const escapedHostile = '&#60;script&#62;alert(1)&#60;/script&#62;';

/** The page's clock: fixed, moved by hand, so "today" and every time shown are known. */
let clock = Date.parse('2026-12-06T09:30:00Z');
const at = (msAgo: number) => isoWithOffset(clock - msAgo);

function statusFixture(): StatusDocument {
  const doc: StatusDocument = {
    format: 1,
    health: {
      village: 'v1',
      at: at(0),
      version: '0.1.0',
      uptimeSeconds: 3600,
      outbox: { depth: 3, oldestUnackedAgeSeconds: 600, alarm: 1, fault: 2, report: 0 },
      devices: [
        { id: 'col-1', bus: 'rs485', model: 've-ac100', online: true, latching: true, missablePressMs: null, pollIntervalMs: 200, errors: {} },
        {
          id: 'col-2',
          bus: 'rs485',
          model: 've-ac100',
          online: false,
          latching: true,
          missablePressMs: null,
          pollIntervalMs: 200,
          errors: { timeout: 4 },
        },
        {
          id: 'amp-1',
          bus: 'rs485',
          model: 've-amp60',
          online: true,
          latching: null,
          missablePressMs: null,
          pollIntervalMs: 1000,
          errors: {},
          status: { power: true, overheat: true, 'line-fault': false },
        },
      ],
      memory: { rssBytes: 50_000_000, heapUsedBytes: 20_000_000 },
      clock: { trusted: true, source: 'system', correctionMs: 0 },
      storage: { state: 'ok', problem: null, memoryOnly: 0, freeBytes: 2_000_000_000 },
      problems: ['device col-9 refused: unknown model'],
      audio: { device: 'default', ok: false, reason: 'no sound card', checkedAt: at(5000) },
      schedule: {
        version: 7,
        source: 'village',
        programmes: 4,
        today: { playing: 0, finished: 2, preempted: 0, stopped: 0, failed: 0, missed: 0, skipped: 0, withheld: 0 },
        mediaMissing: [{ programme: 'fire-safety', reason: 'download failed: 404' }],
      },
    },
    link: {
      url: 'mqtts://county.example:8883/',
      connected: false,
      lastConnectedAt: at(3_600_000),
      lastDisconnectedAt: at(120_000),
      lastDisconnectReason: 'keepalive timeout',
    },
    devices: [
      { id: 'col-1', label: hostile, role: 'alarm-column', lastReplyAt: at(1000), lastChange: null, lastError: null },
      {
        id: 'col-2',
        label: '村东报警柱',
        role: 'alarm-column',
        lastReplyAt: at(300_000),
        lastChange: { online: false, at: at(290_000), reason: 'no reply to 3 polls' },
        lastError: { kind: 'timeout', detail: 'no reply in 150 ms', at: at(290_000) },
      },
      { id: 'amp-1', label: '一号功放', role: 'amplifier', lastReplyAt: at(500), lastChange: null, lastError: null },
    ],
    system: {
      dataDir: { path: '/var/lib/village-edge', freeBytes: 2_000_000_000 },
      memory: { totalBytes: 4_000_000_000, availableBytes: 3_000_000_000 },
      loadAverage: [0.1, 0.2, 0.3],
      temperatures: [],
    },
  };
  // The fixture is a document the real service could send; a schema change that breaks it shows here.
  return statusDocumentSchema.parse(doc);
}

const noProgrammes: ProgrammesView = { schedule: null, today: [], week: [], log: [] };

/** The port's other side: whatever the test sets, as the real village would report it. */
class FakeVillage implements ConsoleVillage {
  readonly villageName = '石桥村';
  readonly zones = [
    { id: 'z-east', label: '村东', amplifier: 'amp-east', statusDevice: 'amp-1' },
    { id: 'z-west', label: '村西', amplifier: 'amp-west' },
  ];
  readonly terminals = [{ id: 'col-1', label: '一号报警柱' }];
  statusDoc = statusFixture();
  alarms: AlarmView[] = [];
  programmeView = noProgrammes;

  status(): Promise<StatusDocument> {
    return Promise.resolve(this.statusDoc);
  }
  recentAlarms(limit: number): AlarmView[] {
    return this.alarms.slice(0, limit);
  }
  programmes(): ProgrammesView {
    return this.programmeView;
  }
  announce(): Promise<ActionResult> {
    return Promise.resolve(notHere);
  }
  stop(): boolean {
    return false;
  }
  broadcast(): undefined {
    return undefined;
  }
  activeBroadcasts(): BroadcastView[] {
    return [];
  }
  diagnostics(): DeviceDiagnostics[] {
    return [];
  }
  testAlarm(): ActionResult {
    return notHere;
  }
  speakerTest(): Promise<ActionResult> {
    return Promise.resolve(notHere);
  }
  audit(): void {}
}
const notHere: ActionResult = { ok: false, reason: 'not in these tests' };
const village = new FakeVillage();

const folder = scratchFolder('console-pages-');
let server: ConsoleServer;
let base: string;

beforeAll(async () => {
  const usersFile = join(folder.dir, 'users.json');
  writeAccounts(usersFile, { format: 1, users: [accountWith('clerk', 'official', await hashPassword('clerk-password'))] });
  // The schema allows no port 0; the test takes any free port.
  const config = { ...consoleConfigSchema.parse({ enabled: true, usersFile }), port: 0 };
  server = new ConsoleServer({ config, village, assetsDir, logger: memoryLogger('info').logger, now: () => clock });
  await server.start();
  base = server.url!;
});

afterAll(async () => {
  await server?.stop();
});

async function signedIn(lang: 'zh' | 'en' = 'zh'): Promise<ConsolePagesClient> {
  const client = new ConsolePagesClient(base);
  await client.signIn('clerk', 'clerk-password');
  if (lang === 'en') expect((await client.get('/lang/en?back=/status')).status).toBe(303);
  return client;
}

/** The live region as the page renders it: `<section id="live" …>…</section>`. */
function liveRegionOf(page: string): string {
  const start = page.indexOf('<section id="live"');
  const end = page.lastIndexOf('</section>');
  expect(start).toBeGreaterThan(-1);
  return page.slice(start, end + '</section>'.length);
}

interface Live {
  updatedAt: string;
  html: string;
}

describe('console pages without a session', () => {
  it.each(['/status', '/alarms', '/programme'])('%s sends the browser to the sign-in page', async (path) => {
    const response = await new ConsolePagesClient(base).get(path);
    expect(response.status).toBe(303);
    expect(response.headers.get('location')).toBe(`/login?next=${encodeURIComponent(path)}`);
  });

  it.each(['/api/status', '/api/alarms', '/api/programme'])('%s answers 401, which live.js turns into the sign-in page', async (path) => {
    const response = await new ConsolePagesClient(base).get(path, { accept: 'application/json' });
    expect(response.status).toBe(401);
    expect(await response.json()).toEqual({ error: 'not signed in' });
  });
});

describe('status page', () => {
  it('shows the link, every device, the amplifiers, the outbox and the machine, in Chinese first', async () => {
    village.statusDoc = statusFixture();
    const page = await (await signedIn()).text('/status');
    expect(page).toContain('<html lang="zh-CN">');
    expect(page).toMatch(/<p id="link-state" data-connected="false" class="state bad">未连接<\/p>/);
    expect(page).toContain('mqtts://county.example:8883/');
    expect(page).toContain('keepalive timeout');
    expect(page).toMatch(/<tr data-device="col-1" data-online="true"/);
    expect(page).toMatch(/<tr data-device="col-2" data-online="false"/);
    expect(page).toContain('离线');
    expect(page).toContain('no reply to 3 polls');
    expect(page).toContain('timeout 4');
    // Amplifier faults and start-up problems are said in the summary, in words.
    expect(page).toContain('功放过热：一号功放');
    expect(page).toContain('配置问题：device col-9 refused: unknown model');
    expect(page).toContain('设备离线：村东报警柱');
    expect(page).toContain('节目缺少音频：fire-safety（download failed: 404）');
    expect(page).toContain('3 条（报警 1，故障 2，报告 0）');
    expect(page).toContain('10 分钟');
    expect(page).toContain('无法使用</span>：no sound card');
    expect(page).toContain('剩余 1.86 GiB');
    expect(page).toContain('版本 7，来自县平台（本村），4 个节目');
    expect(page).toContain('可信（已同步的系统时钟）');
    // Each zone with its amplifier's faults, read from the device that reports the amplifier's state.
    expect(page).toMatch(
      /<tr data-zone="z-east" data-key="zone:z-east" data-faulty="true">\s*<th scope="row">村东<\/th>\s*<td>amp-east<\/td>\s*<td><span class="bad">功放过热<\/span>/,
    );
    expect(page).toMatch(/<tr data-zone="z-west" data-key="zone:z-west" data-faulty="false">[\s\S]*?功放不报告状态/);
  });

  it('escapes a device label: it is text, never markup', async () => {
    village.statusDoc = statusFixture();
    const client = await signedIn();
    const page = await client.text('/status');
    expect(page).toContain(escapedHostile);
    expect(page).not.toContain(hostile);
    const api = await client.json<Live>('/api/status');
    expect(api.html).toContain(escapedHostile);
    expect(api.html).not.toContain(hostile);
  });

  it('marks the refreshed region for live.js and screen readers, with a hidden place for a refresh failure', async () => {
    const page = await (await signedIn()).text('/status');
    expect(page).toContain('<script src="/assets/live.js" defer></script>');
    expect(page).toMatch(
      new RegExp(
        `<section id="live" class="live" aria-live="polite" aria-label="[^"]+" data-live-src="/api/status" data-live-every="2000" data-updated-at="${isoWithOffset(clock).replace(/[.+]/g, '\\$&')}">`,
      ),
    );
    expect(page).toMatch(/<p id="refresh-error" class="error" role="alert" hidden/);
    expect(page).toMatch(/<caption>[^<]+<\/caption>/);
    expect(page).toContain('<th scope="col">');
    expect(page).toContain('<th scope="row">');
  });

  it('answers /api/status with the document and the same region the page shows, and follows the village', async () => {
    village.statusDoc = statusFixture();
    const client = await signedIn();
    const page = await client.text('/status');
    const first = await client.json<Live & { status: StatusDocument }>('/api/status');
    expect(first.updatedAt).toBe(isoWithOffset(clock));
    expect(first.status).toEqual(village.statusDoc);
    expect(first.html).toBe(liveRegionOf(page));

    clock += 2000;
    const doc = statusFixture();
    doc.link.connected = true;
    doc.health.devices[1]!.online = true;
    village.statusDoc = doc;
    const second = await client.json<Live>('/api/status');
    expect(second.updatedAt).toBe(isoWithOffset(clock));
    expect(second.html).toContain(`data-updated-at="${second.updatedAt}"`);
    expect(second.html).toMatch(/<p id="link-state" data-connected="true" class="state ok">已连接<\/p>/);
    expect(second.html).toMatch(/<tr data-device="col-2" data-online="true"/);
  });

  it('says all is well when nothing is wrong', async () => {
    const doc = statusFixture();
    doc.link.connected = true;
    doc.health.devices = doc.health.devices.map((d) =>
      d.status === undefined ? { ...d, online: true } : { ...d, online: true, status: { power: false, overheat: false, 'line-fault': false } },
    );
    doc.health.problems = [];
    doc.health.schedule!.mediaMissing = [];
    doc.health.audio = { device: 'default', ok: true, checkedAt: at(1000) };
    doc.health.outbox = { depth: 0, oldestUnackedAgeSeconds: null, alarm: 0, fault: 0, report: 0 };
    village.statusDoc = doc;
    const page = await (await signedIn()).text('/status');
    expect(page).toContain('一切正常。');
    expect(page).toContain('关（待机）');
  });

  it('speaks English after the language switch', async () => {
    village.statusDoc = statusFixture();
    const page = await (await signedIn('en')).text('/status');
    expect(page).toContain('<html lang="en">');
    expect(page).toContain('<h1>Status</h1>');
    expect(page).toMatch(/data-connected="false" class="state bad">NOT connected</);
    expect(page).toContain('Amplifier overheating: 一号功放');
    expect(page).toContain('3 (alarm 1, fault 2, report 0)');
    expect(page).not.toContain('未连接');
  });
});

function alarm(id: string, state: AlarmView['state'], overrides: Partial<AlarmView> = {}): AlarmView {
  return {
    id,
    terminal: 'col-1',
    terminalLabel: '一号报警柱',
    type: 'button',
    raisedAt: at(60_000),
    presses: 1,
    state,
    ackedAt: state === 'received' ? at(59_000) : null,
    ...overrides,
  };
}

describe('alarms page', () => {
  it('says so when there has been no alarm', async () => {
    village.alarms = [];
    const client = await signedIn();
    expect(await client.text('/alarms')).toContain('<p class="empty">暂无报警。</p>');
    const api = await client.json<Live & { alarms: AlarmView[] }>('/api/alarms');
    expect(api.alarms).toEqual([]);
    expect(api.html).toContain('暂无报警。');
    expect(await (await signedIn('en')).text('/alarms')).toContain('No alarms yet.');
  });

  it('lists each alarm with its column, type, time, presses and what the county made of it, in words', async () => {
    village.alarms = [
      alarm('a3', 'not-received', { type: 'tamper', terminalLabel: hostile }),
      alarm('a2', 'sent', { presses: 3 }),
      alarm('a1', 'received', { type: 'test', raisedAt: isoWithOffset(clock - 3 * 86_400_000) }),
    ];
    const client = await signedIn();
    const page = await client.text('/alarms');
    expect(page).toMatch(/<tr data-alarm="a3" data-state="not-received"/);
    expect(page).toMatch(/<tr data-alarm="a2" data-state="sent"/);
    expect(page).toMatch(/<tr data-alarm="a1" data-state="received"/);
    expect(page).toContain('县平台未收到（确认超时）');
    expect(page).toContain('已发出，等待县平台确认');
    expect(page).toContain('县平台已收到');
    expect(page).toContain('有 1 条报警县平台没有收到');
    expect(page).toContain('防拆报警');
    expect(page).toContain('求助按钮 · 按了 3 次');
    // Today's press by its time alone, an older one with its date.
    expect(page).toContain(`<time datetime="${at(60_000)}"><span>${at(60_000).slice(11, 19)}</span></time>`);
    const old = isoWithOffset(clock - 3 * 86_400_000);
    expect(page).toContain(`<time datetime="${old}"><span>${old.slice(0, 10)}</span> <span>${old.slice(11, 16)}</span></time>`);
    expect(page).toContain(escapedHostile);
    expect(page).not.toContain(hostile);
    expect(page).toContain('data-live-src="/api/alarms" data-live-every="2000"');

    const api = await client.json<Live & { alarms: AlarmView[] }>('/api/alarms');
    expect(api.alarms).toEqual(village.alarms);
    expect(api.html).toBe(liveRegionOf(page));

    const en = await (await signedIn('en')).text('/alarms');
    expect(en).toContain('NOT received (no acknowledgement in time)');
    expect(en).toContain('Received by the county');
    expect(en).toContain('Tamper · pressed once');
  });

  it('asks the village for the latest 50', async () => {
    village.alarms = Array.from({ length: 60 }, (_, i) => alarm(`b${i}`, 'received'));
    const api = await (await signedIn()).json<{ alarms: AlarmView[] }>('/api/alarms');
    expect(api.alarms).toHaveLength(50);
  });
});

describe('programme page', () => {
  it('says when no schedule runs and each section is empty', async () => {
    village.programmeView = noProgrammes;
    const client = await signedIn();
    const page = await client.text('/programme');
    expect(page).toContain('没有节目表：不会播放定时节目。');
    for (const id of ['programme-today', 'programme-week', 'programme-log']) expect(page).toContain(`<section id="${id}"`);
    expect(page).toContain('今天没有节目。');
    expect(page).toContain('本周没有节目。');
    expect(page).toContain('暂无播放记录。');
    expect(page).toContain('data-live-src="/api/programme" data-live-every="30000"');
    const en = await (await signedIn('en')).text('/programme');
    expect(en).toContain('No schedule: no timed programmes will play.');
    expect(en).toContain('Nothing played yet.');
  });

  it('shows the running schedule, today, this week and the completion log with outcomes and reasons', async () => {
    village.programmeView = {
      schedule: { version: 12, source: 'all', timezone: 'Asia/Shanghai' },
      today: [{ programme: 'morning-news', dueAt: at(-3_600_000), zones: ['z-east', 'z-gone'], outcome: 'due' }],
      week: [{ programme: hostile, dueAt: at(-2 * 86_400_000), zones: ['z-west'], outcome: 'due' }],
      log: [
        { programme: 'fire-safety', dueAt: at(7_200_000), zones: ['z-east'], outcome: 'failed', reason: 'media missing' },
        { programme: 'morning-news', dueAt: at(86_400_000), zones: ['z-east', 'z-west'], outcome: 'finished' },
      ],
    };
    const client = await signedIn();
    const page = await client.text('/programme');
    expect(page).toContain('正在执行节目表版本 12，来自县平台（全县），时区 Asia/Shanghai。');
    const today = page.slice(page.indexOf('<section id="programme-today"'), page.indexOf('<section id="programme-week"'));
    expect(today).toContain('morning-news');
    expect(today).toContain('村东、z-gone');
    expect(today).toContain('待播');
    const week = page.slice(page.indexOf('<section id="programme-week"'), page.indexOf('<section id="programme-log"'));
    expect(week).toContain(escapedHostile);
    expect(page).not.toContain(hostile);
    const log = page.slice(page.indexOf('<section id="programme-log"'));
    expect(log).toMatch(/data-outcome="failed".*播放失败.*media missing/s);
    expect(log).toContain('已播完');
    expect(log).toContain('村东、村西');

    const api = await client.json<Live & { programmes: ProgrammesView }>('/api/programme');
    expect(api.programmes).toEqual(village.programmeView);
    expect(api.html).toBe(liveRegionOf(page));

    const en = await (await signedIn('en')).text('/programme');
    expect(en).toContain('Running schedule version 12 from the county (every village), time zone Asia/Shanghai.');
    expect(en).toContain('村东, 村西');
    expect(en).toContain('FAILED');
  });
});

describe('live.js', () => {
  it('is served by the Pi as a script', async () => {
    const response = await new ConsolePagesClient(base).get('/assets/live.js');
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/javascript/);
    expect(await response.text()).toContain('data-live-src');
  });
});
