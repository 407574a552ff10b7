import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkWav } from '../../src/console/pages/wav-check.ts';
import { official, startAnnounceServer } from '../support/console-announce-rig.ts';
import { CHROMIUM_PATH, requireChromium } from '../support/console-browser.ts';
import { waitFor } from '../support/wait.ts';
import { dominantHz } from '../support/tone-frequency.ts';

describe('the announce page in Chromium, with a fake microphone playing a 440 Hz tone', () => {
  let dir = '';
  let rig: Awaited<ReturnType<typeof startAnnounceServer>>;
  let browser: Browser;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'console-announce-browser-'));
    const tone = join(dir, 'tone.wav');
    execFileSync('sox', ['-n', '-r', '48000', '-c', '1', '-b', '16', tone, 'synth', '3', 'sine', '440'], { stdio: 'pipe' });
    rig = await startAnnounceServer();
    // CI installs Chromium: a missing one fails here naming the package, never a silent skip.
    requireChromium();
    browser = await chromium.launch({
      executablePath: CHROMIUM_PATH,
      args: ['--no-sandbox', '--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream', `--use-file-for-fake-audio-capture=${tone}`],
    });
  });
  afterAll(async () => {
    await browser?.close();
    await rig?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  /** A page signed in as an official on /announce, and the script errors it shows (a CSP block shows here too). */
  async function signedInPage(viewport = { width: 1024, height: 800 }): Promise<{ page: Page; errors: string[] }> {
    // 127.0.0.1 is a secure context, so getUserMedia exists over plain HTTP.
    const page = await browser.newPage({ viewport });
    const errors: string[] = [];
    page.on('pageerror', (error) => errors.push(error.message));
    // A refusal's 409 is logged as a failed resource load: expected, not a script error.
    page.on('console', (message) => {
      if (message.type() === 'error' && !message.text().startsWith('Failed to load resource')) errors.push(message.text());
    });
    await page.goto(`${rig.url}/login?next=%2Fannounce`);
    await page.fill('#name', official.name);
    await page.fill('#password', official.password);
    await Promise.all([page.waitForURL(`${rig.url}/announce`), page.click('button[type="submit"].primary')]);
    return { page, errors };
  }

  it('records ~2 s from the microphone with a moving level meter, sends a valid 440 Hz WAV, and follows it to finished', async () => {
    const { page, errors } = await signedInPage();
    await page.check('input[name="kind"][value="recording"]');
    await page.waitForSelector('#announce-text', { state: 'hidden' });
    await page.check('input[name="zones"][value="north"]');
    await page.fill('#announce-repeat', '2');

    await page.click('#record-start');
    // meter.value reflects into its attribute; waitForFunction would need eval, which the page's CSP forbids.
    await page.waitForSelector('#record-level:not([value="0"])');
    expect(Number(await page.getAttribute('#record-level', 'value'))).toBeGreaterThan(0);
    await waitFor('2 s recorded', async () => Number(await page.getAttribute('#record-time', 'data-seconds')) >= 2, {
      timeoutMs: 10_000,
      intervalMs: 50,
    });
    await page.click('#record-stop');
    await page.waitForSelector('#record-playback[src^="blob:"]', { state: 'attached' });
    expect(await page.isEnabled('#record-discard')).toBe(true);

    await page.click('#announce-send');
    await page.waitForSelector('#announce-progress[data-state="accepted"]');
    const sent = await waitFor('the announcement at the village', () => rig.village.announced.at(-1));
    expect(await page.getAttribute('#announce-progress', 'data-broadcast')).toBe(sent.id);
    expect(sent.order).toMatchObject({ zones: ['north'], repeat: 2, chime: true });
    expect(sent.user.name).toBe('wang');

    const content = sent.order.content;
    if (content.kind !== 'recording') throw new Error(`a ${content.kind} announcement arrived, not a recording`);
    const check = checkWav(content.wav, { maxSeconds: 120 });
    if (!check.ok) throw new Error(`the page's WAV fails the check: ${check.reason}`);
    expect(check.info).toMatchObject({ sampleRate: 16000, channels: 1 });
    expect(check.info.seconds).toBeGreaterThanOrEqual(1.9);
    expect(check.info.seconds).toBeLessThan(3);
    expect(dominantHz(content.wav, 16000)).toBeCloseTo(440, -1);

    await page.waitForSelector('#announce-stop', { state: 'visible' });
    rig.village.step(sent.id, 'started');
    await page.waitForSelector('#announce-progress[data-state="started"]');
    rig.village.step(sent.id, 'finished');
    await page.waitForSelector('#announce-progress[data-state="finished"]');
    await page.waitForSelector('#announce-stop', { state: 'hidden' });
    expect(errors).toEqual([]);
    await page.close();
  });

  it('shows a refusal in the alert, stops the followed announcement, and stops what else plays from the list', async () => {
    const { page, errors } = await signedInPage({ width: 360, height: 740 });
    // On a 360 px phone nothing scrolls sideways, and every control is a 48 px target.
    expect(await page.evaluate('document.documentElement.scrollWidth')).toBeLessThanOrEqual(360);
    await page.check('input[name="kind"][value="recording"]');
    for (const selector of ['#announce-send', '#record-start', 'label:has(input[name="zones"][value="north"])', 'label:has(#announce-chime)']) {
      const box = await page.locator(selector).boundingBox();
      expect(box?.height, selector).toBeGreaterThanOrEqual(48);
    }
    await page.check('input[name="kind"][value="text"]');

    rig.village.refusal = '静默时段（22:00–06:00）不播通知';
    await page.fill('#announce-text', '今晚停电');
    await page.check('input[name="zones"][value="south"]');
    await page.click('#announce-send');
    await page.waitForSelector('#announce-progress[data-state="rejected"]');
    expect(await page.textContent('#announce-error')).toBe('静默时段（22:00–06:00）不播通知');

    rig.village.refusal = undefined;
    await page.click('#announce-send');
    await page.waitForSelector('#announce-progress[data-state="accepted"]');
    expect(await page.textContent('#announce-error')).toBe('');
    const sent = rig.village.announced.at(-1)!;
    expect(sent.order.content).toEqual({ kind: 'text', text: '今晚停电' });
    rig.village.step(sent.id, 'started');
    await page.waitForSelector('#announce-progress[data-state="started"]');
    await page.click('#announce-stop');
    await page.waitForSelector('#announce-progress[data-state="stopped"]');
    expect(rig.village.stops.at(-1)).toMatchObject({ id: sent.id, user: { name: 'wang' } });

    rig.village.add({
      id: 'county-jti-1',
      by: null,
      priority: 'announcement',
      zones: ['north', 'south'],
      steps: [{ event: 'started', at: new Date().toISOString() }],
      active: true,
    });
    await page.waitForSelector('[data-active-broadcast="county-jti-1"]');
    await page.click('[data-active-broadcast="county-jti-1"] button');
    await page.waitForSelector('[data-active-broadcast="county-jti-1"]', { state: 'detached' });
    expect(rig.village.stops.at(-1)).toMatchObject({ id: 'county-jti-1', user: { name: 'wang' } });
    expect(errors).toEqual([]);
    await page.close();
  });
});
