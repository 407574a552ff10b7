import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { checkWav } from '../../src/console/pages/wav-check.ts';
import { pageProblems, screenshot, useConsoleBrowser, type Width } from '../support/console-browser.ts';
import { startConsoleVillage, type ConsoleAccount, type ConsoleVillageRig } from '../support/console-village.ts';
import type { CountyMessage } from '../support/county.ts';
import { waitFor } from '../support/wait.ts';
import { dominantHz } from '../support/tone-frequency.ts';

// The office console end to end: the built service with simulated devices, the run's real broker and a county
// on it, driven through headless Chromium as an official and an installer would, at a phone's and a desktop's width.

/** What Chromium's fake microphone hears: a 440 Hz tone, 48 kHz mono (it loops the file). */
const micDir = mkdtempSync(join(tmpdir(), 've-console-mic-'));
const micWav = join(micDir, 'tone-440.wav');
execFileSync('sox', ['-n', '-r', '48000', '-c', '1', '-b', '16', micWav, 'synth', '4', 'sine', '440'], { stdio: 'pipe' });

/** Spoken text containing this takes a minute (until stopped), so the stop button has something to stop. */
const slowMarker = '慢慢';

/**
 * Visible form controls a screen reader could not name: no <label>, aria-label(ledby) or text. Run in the page
 * (as a string: the page's CSP forbids eval, which a function would need).
 */
const unnamedControls = `[...document.querySelectorAll('input:not([type=hidden]), select, textarea, button, meter')]
  .filter((e) => e.offsetParent !== null)
  .filter((e) => !(e.labels?.length || e.getAttribute('aria-label') || e.getAttribute('aria-labelledby') || e.textContent.trim()))
  .map((e) => e.outerHTML.slice(0, 120))`;

/** The height of each visible button and menu link, with a few words of it for the failure message. */
const buttonHeights = `[...document.querySelectorAll('button, nav a')]
  .filter((e) => e.offsetParent !== null)
  .map((e) => ({ height: e.getBoundingClientRect().height, what: e.textContent.trim().slice(0, 40) }))`;

describe('the office console, end to end in Chromium against the built service', () => {
  const browser = useConsoleBrowser({ fakeMicrophoneWav: micWav });
  let village: ConsoleVillageRig;

  beforeAll(async () => {
    village = await startConsoleVillage({
      brokerUrl: inject('brokerUrl'),
      protocolVersion: inject('brokerProtocolVersion'),
      configure: (config) => {
        const broadcast = config['broadcast'] as { player: { tts: string[] } };
        const [sh, flag, script, ...rest] = broadcast.player.tts;
        // After recording the text as before: a text marked slow plays for a minute (exec: the stop's SIGTERM ends it).
        broadcast.player.tts = [sh!, flag!, `${script}; case "$0" in *${slowMarker}*) exec sleep 60;; esac`, ...rest];
        // A running schedule, so the programme page has something to show: one programme daily three hours from
        // now, and quiet hours placed well away from the minutes this file runs in (Beijing time).
        const beijingHour = (offsetHours: number) => String(new Date(Date.now() + (8 + offsetHours) * 3_600_000).getUTCHours()).padStart(2, '0');
        config['schedule'] = {
          document: {
            version: 1,
            timezone: 'Asia/Shanghai',
            quietHours: { from: `${beijingHour(6)}:00`, until: `${beijingHour(7)}:00` },
            programmes: [
              {
                id: 'pufa-evening',
                title: '普法小课堂',
                cron: `0 0 ${Number(beijingHour(3))} * * *`,
                zones: ['committee'],
                content: { kind: 'tts', text: '普法小课堂：遇到矛盾纠纷，请找村调解委员会。' },
              },
            ],
          },
        };
        return config;
      },
    });
  }, 90_000);
  afterAll(async () => {
    await village?.stop();
  });

  async function signIn(width: Width, account: ConsoleAccount, next = '/status'): Promise<{ page: Page; problems: string[] }> {
    const page = await browser.current.newPage(width);
    const problems = pageProblems(page);
    await page.goto(`${village.url}/login?next=${encodeURIComponent(next)}`);
    await page.fill('#name', account.name);
    await page.fill('#password', account.password);
    await Promise.all([page.waitForURL(`${village.url}${next}`), page.click('button[type="submit"].primary')]);
    return { page, problems };
  }

  const reportsFor = (jti: string): CountyMessage[] =>
    village.county.messages.filter((m) => m.kind === 'report' && (m.payload as { jti?: unknown }).jti === jti);
  const eventsOf = (jti: string): string[] => [...new Set(reportsFor(jti).map((m) => (m.payload as { event: string }).event))];

  it('shows a simulated column going offline and coming back, without a reload', async () => {
    const { page, problems } = await signIn('desktop', village.official);
    await page.waitForSelector('[data-device="column-2"][data-online="true"]');
    await page.waitForSelector('#link-state[data-connected="true"]');
    const navigations = "performance.getEntriesByType('navigation').length";
    const loaded = await page.evaluate(navigations);
    village.service.send('offline column-2');
    await page.waitForSelector('[data-device="column-2"][data-online="false"]', { timeout: 15_000 });
    village.service.send('online column-2');
    await page.waitForSelector('[data-device="column-2"][data-online="true"]', { timeout: 15_000 });
    // The same document all along: the live refresh, not a page load.
    expect(await page.evaluate(navigations)).toBe(loaded);
    expect(problems).toEqual([]);
    await page.context().close();
  });

  it('speaks a text announcement: it reaches the player, the page follows it to finished, the county hears who made it', async () => {
    const { page, problems } = await signIn('phone', village.official, '/announce');
    const text = '今晚八点在村委会开会，请各户派一人参加。';
    await page.fill('#announce-text', text);
    await page.check('input[name="zones"][value="school"]');
    await page.fill('#announce-repeat', '2');
    await page.click('#announce-send');
    await page.waitForSelector('#announce-progress[data-state="finished"]', { timeout: 20_000 });
    const id = (await page.getAttribute('#announce-progress', 'data-broadcast'))!;
    expect(id).toMatch(/^console:/);
    expect(village.ttsPlayed().filter((t) => t === text)).toHaveLength(2);

    await waitFor(
      'the county to hear the announcement start and finish',
      () => ['accepted', 'started', 'finished'].every((e) => eventsOf(id).includes(e)),
      10_000,
    );
    const audit = reportsFor(id).find((m) => (m.payload as { event: string }).event === 'console')!.payload as {
      console: { action: string; user: string; role: string; detail: string };
    };
    expect(audit.console).toMatchObject({ action: 'announce', user: village.official.name, role: 'official' });
    expect(audit.console.detail).toContain(text);
    const started = reportsFor(id).find((m) => (m.payload as { event: string }).event === 'started')!.payload;
    expect(started).toMatchObject({ priority: 'announcement', status: 'actual', zones: ['school'] });
    expect(problems).toEqual([]);
    await page.context().close();
  });

  it('plays a voice recorded through the microphone in the page: the file played is the one recorded, a 440 Hz tone', async () => {
    const { page, problems } = await signIn('desktop', village.official, '/announce');
    await page.check('input[name="kind"][value="recording"]');
    await page.check('input[name="zones"][value="committee"]');
    await page.uncheck('#announce-chime');
    await page.click('#record-start');
    await page.waitForSelector('#record-level:not([value="0"])');
    await waitFor('2 s recorded', async () => Number(await page.getAttribute('#record-time', 'data-seconds')) >= 2, {
      timeoutMs: 15_000,
      intervalMs: 50,
    });
    await page.click('#record-stop');
    const recordedSeconds = Number(await page.getAttribute('#record-time', 'data-seconds'));
    await page.waitForSelector('#record-playback[src^="blob:"]', { state: 'attached' });
    await page.click('#announce-send');
    await page.waitForSelector('#announce-progress[data-state="finished"]', { timeout: 20_000 });

    const played = readFileSync(await village.waitForMedia((name) => name.startsWith('console-')));
    const check = checkWav(played, { maxSeconds: 120 });
    if (!check.ok) throw new Error(`the played file is not a good WAV: ${check.reason}`);
    // As long as the page said it recorded, and the microphone's tone: the audio the official made, not another.
    expect(check.info.seconds).toBeGreaterThanOrEqual(1.9);
    expect(Math.abs(check.info.seconds - recordedSeconds)).toBeLessThan(0.5);
    expect(dominantHz(played, check.info.sampleRate)).toBeCloseTo(440, -1);
    expect(problems).toEqual([]);
    await page.context().close();
  });

  it('stops an announcement that is playing; the county hears it was stopped, and by whom', async () => {
    const { page, problems } = await signIn('desktop', village.official, '/announce');
    await page.fill('#announce-text', `请${slowMarker}听：明天上午停水。`);
    await page.check('input[name="zones"][value="committee"]');
    await page.uncheck('#announce-chime');
    await page.click('#announce-send');
    await page.waitForSelector('#announce-progress[data-state="started"]', { timeout: 20_000 });
    const id = (await page.getAttribute('#announce-progress', 'data-broadcast'))!;
    await page.waitForSelector(`[data-active-broadcast="${id}"]`);
    await screenshot(page, 'announce-playing');
    await page.click('#announce-stop');
    await page.waitForSelector('#announce-progress[data-state="stopped"]', { timeout: 10_000 });
    await waitFor('the county to hear it stopped', () => eventsOf(id).includes('stopped'), 10_000);
    const stop = village.county.messages.find(
      (m) => m.kind === 'report' && (m.payload as { console?: { action: string; subject?: string } }).console?.action === 'stop',
    )?.payload as { console: { user: string; subject: string } };
    expect(stop.console).toMatchObject({ user: village.official.name, subject: id });
    expect(problems).toEqual([]);
    await page.context().close();
  });

  it('lists a villager press on the alarms page, sent and then received by the county', async () => {
    const { page, problems } = await signIn('phone', village.official, '/alarms');
    village.service.send('press column-1');
    const alarm = await village.county.waitFor((m) => m.kind === 'alarm' && (m.payload as { terminal?: string }).terminal === 'column-1', 10_000);
    const alarmId = (alarm.payload as { id: string }).id;
    await page.waitForSelector(`[data-alarm="${alarmId}"][data-state="received"]`, { timeout: 15_000 });
    expect(problems).toEqual([]);
    await page.context().close();
  });

  it('gives the installer the raw replies, a test alarm that reaches the county as a test, and a loudspeaker test that plays the tone', async () => {
    const { page, problems } = await signIn('desktop', village.installer, '/installer');
    await page.waitForSelector('[data-device="column-1"]');
    await page.click('button[data-test-alarm="column-2"]');
    await page.waitForSelector('#installer-result[data-outcome="ok"]');
    const test = await village.county.waitFor(
      (m) =>
        m.kind === 'alarm' &&
        (m.payload as { terminal?: string; type?: string }).terminal === 'column-2' &&
        (m.payload as { type?: string }).type === 'test',
      10_000,
    );
    expect(test.payload).toMatchObject({ type: 'test', terminal: 'column-2' });

    await page.click('button[data-speaker-test="school"]');
    await page.waitForSelector('#installer-result[data-outcome="ok"]');
    const tone = readFileSync(await village.waitForMedia((name) => name === 'tone-1khz.wav'));
    expect(dominantHz(tone, 16_000)).toBeCloseTo(1000, -1);
    await village.waitForAudit({ action: 'speaker-test', user: village.installer.name });
    expect(problems).toEqual([]);
    await page.context().close();
  });

  it('shows the running schedule and the programmes of the week on the programme page', async () => {
    const { page, problems } = await signIn('desktop', village.official, '/programme');
    const week = await page.textContent('#programme-week');
    expect(week).toContain('普法小课堂');
    expect(week).toContain('pufa-evening');
    expect(problems).toEqual([]);
    await page.context().close();
  });

  it('writes a screenshot of every page at a phone and a desktop width, in Chinese and in English', async () => {
    for (const width of ['phone', 'desktop'] as const) {
      const page = await browser.current.newPage(width);
      const problems = pageProblems(page);
      await page.goto(`${village.url}/login`);
      await screenshot(page, 'login');
      await page.fill('#name', village.installer.name);
      await page.fill('#password', village.installer.password);
      await Promise.all([page.waitForURL(`${village.url}/status`), page.click('button[type="submit"].primary')]);
      for (const name of ['status', 'alarms', 'announce', 'programme', 'installer']) {
        await page.goto(`${village.url}/${name}`);
        // Nothing wider than the screen: a phone never scrolls sideways.
        expect(await page.evaluate('document.documentElement.scrollWidth'), `${name} at ${width}`).toBeLessThanOrEqual(page.viewportSize()!.width);
        // For a screen reader: one main landmark and one h1, and every visible control has a name it can say.
        expect(await page.locator('main').count()).toBe(1);
        expect(await page.locator('h1').count()).toBe(1);
        expect(await page.evaluate(unnamedControls), `${name}: controls without an accessible name`).toEqual([]);
        // Large touch targets: every visible button and menu link is at least 48 px high.
        const boxes = (await page.evaluate(buttonHeights)) as Array<{ height: number; what: string }>;
        expect(boxes.length, `${name}: buttons and menu links measured`).toBeGreaterThanOrEqual(6);
        for (const box of boxes) expect(box.height, `${name}: ${box.what}`).toBeGreaterThanOrEqual(48);
        await screenshot(page, name);
      }
      await page.goto(`${village.url}/lang/en?back=%2Fstatus`);
      await page.waitForSelector('html[lang="en"]');
      await screenshot(page, 'status-en');
      expect(problems).toEqual([]);
      await page.context().close();
    }
  });
});
