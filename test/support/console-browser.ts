import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type BrowserContextOptions, type Page } from 'playwright-core';
import { afterAll, beforeAll } from 'vitest';

/**
 * Debian's Chromium, headless, driven by playwright-core (no browser download): the office console as a
 * phone and an office PC see it. A test file launches one browser (useConsoleBrowser, in its describe
 * block) and opens a context per user: each context has its own cookies, so its own session.
 */

export const CHROMIUM_PATH = '/usr/bin/chromium';
const repoRoot = new URL('../../', import.meta.url).pathname;
export const screenshotDir = join(repoRoot, 'test-output/screenshots');

export type Width = 'phone' | 'desktop';

/** A village official's phone (360 CSS px wide, touch) and the office PC. */
export const widths: Record<Width, BrowserContextOptions> = {
  phone: { viewport: { width: 360, height: 740 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2 },
  desktop: { viewport: { width: 1280, height: 800 } },
};

export interface BrowserOptions {
  /**
   * A 48 kHz mono WAV that Chromium's fake microphone plays to getUserMedia, with the permission prompt
   * answered yes (the recording tests). getUserMedia needs a secure context: load the page from localhost.
   */
  fakeMicrophoneWav?: string;
  /**
   * A cgroup (v1 `cpu` controller folder) to start Chromium and every process it starts in: the bench's way to
   * give browsers, which in a village run on phones and the office PC, a small share of this machine's cores.
   * (`nice` does not hold: Chromium sets its own processes' priorities.)
   */
  cpuCgroup?: string;
}

export interface ConsoleBrowser {
  readonly browser: Browser;
  /** A new context (own cookies) at the given width, Chinese locale and Beijing time. */
  newContext(width: Width, options?: BrowserContextOptions): Promise<BrowserContext>;
  /** A page in a new context of its own; closing the page's context is the caller's, or close()'s. */
  newPage(width: Width, options?: BrowserContextOptions): Promise<Page>;
  close(): Promise<void>;
}

/** Fails in one line naming the Debian package when Chromium is missing: CI installs it, and a test must never pass by skipping. */
export function requireChromium(): void {
  if (!existsSync(CHROMIUM_PATH))
    throw new Error(`${CHROMIUM_PATH} is missing: install the Debian packages "chromium" and "fonts-wqy-microhei" (.ci/run does)`);
}

export async function launchConsoleBrowser(options: BrowserOptions = {}): Promise<ConsoleBrowser> {
  requireChromium();
  const args = [
    // As root (CI and the dev machines) Chromium refuses to start with its sandbox on.
    '--no-sandbox',
    '--disable-dev-shm-usage',
    ...(options.fakeMicrophoneWav === undefined
      ? []
      : ['--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream', `--use-file-for-fake-audio-capture=${options.fakeMicrophoneWav}`]),
  ];
  const browser = await chromium.launch({ executablePath: chromiumCommand(options.cpuCgroup), headless: true, args, timeout: 30_000 });
  const contexts = new Set<BrowserContext>();
  const newContext = async (width: Width, extra: BrowserContextOptions = {}): Promise<BrowserContext> => {
    const context = await browser.newContext({ ...widths[width], locale: 'zh-CN', timezoneId: 'Asia/Shanghai', ...extra });
    contexts.add(context);
    context.once('close', () => contexts.delete(context));
    widthOf.set(context, width);
    return context;
  };
  return {
    browser,
    newContext,
    async newPage(width, extra) {
      return (await newContext(width, extra)).newPage();
    },
    async close() {
      for (const context of [...contexts]) await context.close().catch(() => undefined);
      await browser.close();
    },
  };
}

const widthOf = new WeakMap<BrowserContext, Width>();

/**
 * One browser for the describe block it is called in: launched in beforeAll, closed in afterAll even when a
 * test (or the launch itself) failed. Read `.current` inside tests and hooks.
 */
export function useConsoleBrowser(options: BrowserOptions = {}): { readonly current: ConsoleBrowser } {
  let browser: ConsoleBrowser | undefined;
  beforeAll(async () => {
    browser = await launchConsoleBrowser(options);
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    browser = undefined;
  });
  return {
    get current() {
      if (browser === undefined) throw new Error('the browser is not running (its beforeAll failed, or this runs outside the describe block)');
      return browser;
    },
  };
}

/** A full-page PNG at test-output/screenshots/<name>-<phone|desktop>.png; its path. */
export async function screenshot(page: Page, name: string): Promise<string> {
  const width = widthOf.get(page.context()) ?? ((page.viewportSize()?.width ?? 1280) <= 480 ? 'phone' : 'desktop');
  mkdirSync(screenshotDir, { recursive: true });
  const path = join(screenshotDir, `${name}-${width}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}

/**
 * What went wrong inside the page: uncaught errors and console errors (a script or style the content
 * security policy refused shows here). A test ends with `expect(problems).toEqual([])`.
 */
export function pageProblems(page: Page): string[] {
  const problems: string[] = [];
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('console', (message) => {
    const url = message.location().url;
    // Chromium asks every new site for /favicon.ico on its own; the console has none (yet), so it is a 404
    // that no page caused.
    if (message.type() === 'error' && new URL(url || 'about:blank').pathname !== '/favicon.ico')
      problems.push(`console error: ${message.text()} (${url})`);
  });
  return problems;
}

/** Chromium itself, or a wrapper that starts it (and so all its processes) inside `cpuCgroup`. */
function chromiumCommand(cpuCgroup: string | undefined): string {
  if (cpuCgroup === undefined) return CHROMIUM_PATH;
  const wrapper = join(mkdtempSync(join(tmpdir(), 've-chromium-')), 'chromium');
  writeFileSync(wrapper, `#!/bin/sh\necho $$ > '${cpuCgroup}/cgroup.procs' || exit 1\nexec ${CHROMIUM_PATH} "$@"\n`, { mode: 0o755 });
  return wrapper;
}
