import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { performance } from 'node:perf_hooks';
import type { Page } from 'playwright-core';
import { pageProblems, screenshot, useConsoleBrowser, type Width } from '../support/console-browser.ts';
import { ConsoleHttpClient } from '../support/console-http.ts';
import { addAccount, startConsoleVillage, villageCli, type ConsoleAccount, type ConsoleVillageRig } from '../support/console-village.ts';
import { waitFor } from '../support/wait.ts';

/**
 * The office console's sign-in and what it refuses, in Debian's Chromium against the built service (console
 * on, real Mosquitto, accounts made by `village-edge user add`): the way a village official meets it.
 */

const brokerUrl = inject('brokerUrl');
const protocolVersion = inject('brokerProtocolVersion');

/** Fills the sign-in form of the page's current /login and sends it; the response of the POST. */
async function submitLogin(page: Page, account: { name: string; password: string }) {
  await page.locator('#name').fill(account.name);
  await page.locator('#password').fill(account.password);
  const [response] = await Promise.all([
    page.waitForResponse((r) => r.request().method() === 'POST' && new URL(r.url()).pathname === '/login'),
    page.locator('form.login button[type=submit]').click(),
  ]);
  await page.waitForLoadState('load');
  return response;
}

async function signIn(page: Page, village: ConsoleVillageRig, account: ConsoleAccount): Promise<void> {
  await page.goto(`${village.url}/login`);
  await submitLogin(page, account);
  await page.waitForURL(`${village.url}/status`);
}

const pathOf = (page: Page): string => {
  const url = new URL(page.url());
  return `${url.pathname}${url.search}`;
};

describe('the office console: signing in, and what is refused without it', () => {
  const browser = useConsoleBrowser();
  let village: ConsoleVillageRig;

  beforeAll(async () => {
    village = await startConsoleVillage({
      brokerUrl,
      protocolVersion,
      villageId: 'console-auth',
      console: { lockout: { maxFailures: 3, baseSeconds: 1, maxSeconds: 4 } },
    });
  }, 60_000);

  afterAll(async () => {
    await village?.stop();
  });

  it.each(['phone', 'desktop'] as const)('signs in through the form on a %s: the status page, with the name signed in', async (width: Width) => {
    const page = await browser.current.newPage(width);
    const problems = pageProblems(page);
    await page.goto(`${village.url}/status`);
    expect(pathOf(page)).toBe('/login?next=%2Fstatus');
    await expect(page.locator('h1').textContent()).resolves.toBe('登录');
    expect(await page.locator('html').getAttribute('lang')).toBe('zh-CN');
    await screenshot(page, 'login');

    const response = await submitLogin(page, village.official);
    expect(response.status()).toBe(303);
    expect(pathOf(page)).toBe('/status');
    await expect(page.locator('h1').textContent()).resolves.toBe('状态');
    await expect(page.locator('header .who').textContent()).resolves.toBe(village.official.name);
    const menu = await page.locator('nav a').allTextContents();
    expect(menu).toContain('状态');
    expect(menu).not.toContain('安装调试');
    await screenshot(page, 'status');
    const login = await village.waitForAudit({ action: 'login', user: village.official.name });
    expect(login).toMatchObject({ role: 'official', address: '127.0.0.1' });

    await page.locator('form.logout button').click();
    await page.waitForURL(`${village.url}/login`);
    await village.waitForAudit({ action: 'logout', user: village.official.name });
    await page.goto(`${village.url}/status`);
    expect(pathOf(page)).toBe('/login?next=%2Fstatus');
    expect(problems).toEqual([]);
    await page.context().close();
  });

  it('sends a page without a session to /login', async () => {
    const client = new ConsoleHttpClient(village.directUrl);
    for (const path of ['/', '/status', '/alarms', '/announce', '/programme', '/installer']) {
      const answer = await client.get(path);
      expect({ path, status: answer.status, location: answer.location }).toEqual({
        path,
        status: 303,
        location: `/login?next=${encodeURIComponent(path)}`,
      });
    }
    const page = await browser.current.newPage('desktop');
    await page.goto(`${village.url}/alarms`);
    expect(pathOf(page)).toBe('/login?next=%2Falarms');
    await page.context().close();
  });

  it('refuses the status API without a session with 401, and answers it with one', async () => {
    const signedIn = new ConsoleHttpClient(village.directUrl);
    expect((await signedIn.login(village.official.name, village.official.password)).status).toBe(303);
    const answered = await signedIn.get('/api/status', { accept: 'application/json' });
    expect(answered.status).toBe(200);
    expect(answered.contentType).toMatch(/^application\/json/);

    const anonymous = await new ConsoleHttpClient(village.directUrl).get('/api/status', { accept: 'application/json' });
    expect(anonymous.status).toBe(401);
    expect(JSON.parse(anonymous.body)).toEqual({ error: 'not signed in' });
    const unknown = await signedIn.get('/api/nothing-here', { accept: 'application/json' });
    expect([unknown.status, JSON.parse(unknown.body)]).toEqual([404, { error: 'no such API' }]);
  });

  it('says so on a wrong password and stays on /login; the refusal is logged with the name tried', async () => {
    const page = await browser.current.newPage('phone');
    await page.goto(`${village.url}/login`);
    const response = await submitLogin(page, { name: village.official.name, password: 'not-the-password' });
    expect(response.status()).toBe(401);
    expect(pathOf(page)).toBe('/login');
    await expect(page.locator('[role=alert]').textContent()).resolves.toBe('用户名或密码不对。');
    await expect(page.locator('header .who').count()).resolves.toBe(0);
    await village.waitForAudit({ action: 'login-refused', user: village.official.name, detail: 'wrong name or password' });
    await screenshot(page, 'login-refused');

    // One failure is not a lock-out: the right password still works (and clears the count).
    await submitLogin(page, village.official);
    expect(pathOf(page)).toBe('/status');
    await page.context().close();
  });

  it('locks an account out after 3 failures: its right password is refused while locked, from any address, then taken', async () => {
    const zhao: ConsoleAccount = { name: 'zhao', role: 'official', password: 'zhao-secret-3' };
    // Read at each login: an account added while the service runs works at once.
    await addAccount(village.configPath, zhao);
    const page = await browser.current.newPage('desktop');
    await page.goto(`${village.url}/login`);
    for (let n = 1; n <= 3; n++) {
      const refused = await submitLogin(page, { name: zhao.name, password: `wrong-${n}` });
      expect(refused.status()).toBe(401);
    }
    await village.waitForAudit({ action: 'login-refused', user: zhao.name, detail: 'wrong name or password; locked out for 1 s' });

    const lockedAt = performance.now();
    const locked = await submitLogin(page, zhao);
    expect(locked.status()).toBe(429);
    expect(pathOf(page)).toBe('/login');
    await expect(page.locator('[role=alert]').textContent()).resolves.toMatch(/^尝试次数过多，请 \d+ 秒后再试。$/);
    // Another address is not locked, but the account is.
    const elsewhere = new ConsoleHttpClient(village.directUrl, { localAddress: '127.0.0.2' });
    expect((await elsewhere.login(zhao.name, zhao.password)).status).toBe(429);
    expect((await elsewhere.login(village.installer.name, village.installer.password)).status).toBe(303);
    await village.service.waitForLog((l) => l.msg === 'console login refused: locked out' && l['user'] === zhao.name);

    // The lock-out lifts by itself (1 s): the right password is taken again, and the refusals did not extend it.
    const fromHere = new ConsoleHttpClient(village.directUrl);
    const taken = await waitFor(
      'the lock-out to lift',
      async () => {
        const answer = await fromHere.login(zhao.name, zhao.password);
        return answer.status === 303 ? answer : undefined;
      },
      { timeoutMs: 10_000, intervalMs: 200 },
    );
    expect(taken.location).toBe('/status');
    expect(performance.now() - lockedAt).toBeLessThan(4000);
    await page.context().close();
  });

  it('locks an address out after 3 failures under any names: a right password from it is refused, from elsewhere taken', async () => {
    const guesser = new ConsoleHttpClient(village.directUrl, { localAddress: '127.0.0.3' });
    for (const name of ['admin', 'root', 'guest']) expect((await guesser.login(name, 'password1')).status).toBe(401);
    const refused = await guesser.login(village.official.name, village.official.password);
    expect(refused.status).toBe(429);
    expect(refused.body).toMatch(/尝试次数过多/);
    const neighbour = new ConsoleHttpClient(village.directUrl, { localAddress: '127.0.0.4' });
    expect((await neighbour.login(village.official.name, village.official.password)).status).toBe(303);
    await village.service.waitForLog(
      (l) => l.msg === 'console login refused: locked out' && l['address'] === '127.0.0.3' && l['user'] === village.official.name,
    );
  });

  it('treats a forged session cookie as signed out, and the genuine one still works', async () => {
    const page = await browser.current.newPage('desktop');
    await signIn(page, village, village.official);
    const context = page.context();
    const genuine = (await context.cookies()).find((c) => c.name === 've_session');
    expect(genuine).toBeDefined();
    // `<session id>.<signature>`: another id under the old signature, and the old id under a changed signature.
    const [id = '', signature = ''] = genuine!.value.split('.');
    const flip = (text: string): string => `${text.slice(0, -2)}${text.at(-2) === 'A' ? 'B' : 'A'}${text.slice(-1)}`;
    for (const forged of [`${flip(id)}.${signature}`, `${id}.${flip(signature)}`, 'made-up']) {
      await context.addCookies([{ ...genuine!, value: forged }]);
      await page.goto(`${village.url}/status`);
      expect({ forged, path: pathOf(page) }).toEqual({ forged, path: '/login?next=%2Fstatus' });
    }
    await context.addCookies([genuine!]);
    await page.goto(`${village.url}/status`);
    expect(pathOf(page)).toBe('/status');
    await context.close();
  });

  it('refuses a POST without its CSRF token (sign-in and sign-out) with 403', async () => {
    const client = new ConsoleHttpClient(village.directUrl);
    await client.get('/login');
    const noToken = await client.postForm('/login', { name: village.official.name, password: village.official.password }, null);
    expect(noToken.status).toBe(403);
    const wrongToken = await client.postForm('/login', { name: village.official.name, password: village.official.password }, 'forged-token');
    expect(wrongToken.status).toBe(403);
    expect((await client.get('/status')).status).toBe(303);

    expect((await client.login(village.official.name, village.official.password)).status).toBe(303);
    expect((await client.postForm('/logout', {}, null)).status).toBe(403);
    expect((await client.postForm('/logout', {}, 'forged-token')).status).toBe(403);
    // Still signed in: the refused sign-outs did nothing.
    expect((await client.get('/status')).status).toBe(200);
    const out = await client.postForm('/logout', {});
    expect({ status: out.status, location: out.location }).toEqual({ status: 303, location: '/login' });
    expect((await client.get('/status')).status).toBe(303);

    const zhou: ConsoleAccount = { name: 'zhou', role: 'installer', password: 'zhou-secret-55' };
    await addAccount(village.configPath, zhou);
    const installer = new ConsoleHttpClient(village.directUrl);
    expect((await installer.login(zhou.name, zhou.password)).status).toBe(303);
    expect((await installer.get('/installer')).status).toBe(200);
    await villageCli(['user', 'passwd', zhou.name, '--role', 'official', '--config', village.configPath], 'zhou-secret-66\n');
    expect((await installer.get('/installer')).status).toBe(403);
    expect((await installer.get('/status')).status).toBe(200);
  });

  it('keeps the installer page for installers: an official gets a 403 page', async () => {
    const official = await browser.current.newPage('phone');
    await signIn(official, village, village.official);
    const refused = await official.goto(`${village.url}/installer`);
    expect(refused?.status()).toBe(403);
    await expect(official.locator('h1').textContent()).resolves.toBe('无权访问');
    await expect(official.locator('[role=alert]').textContent()).resolves.toBe('这一页只供安装人员使用。');
    await screenshot(official, 'installer-refused');
    await official.context().close();

    const installer = await browser.current.newPage('phone');
    await signIn(installer, village, village.installer);
    expect(await installer.locator('nav a').allTextContents()).toContain('安装调试');
    const allowed = await installer.goto(`${village.url}/installer`);
    expect(allowed?.status()).toBe(200);
    await expect(installer.locator('h1').textContent()).resolves.toBe('安装调试');
    await expect(installer.locator('header .who').textContent()).resolves.toBe(village.installer.name);
    await installer.context().close();
  });

  it('switches the page to English and back to Chinese', async () => {
    const page = await browser.current.newPage('desktop');
    await signIn(page, village, village.official);
    await page.locator('a.lang').click();
    await page.waitForURL(`${village.url}/status`);
    await expect(page.locator('h1').textContent()).resolves.toBe('Status');
    expect(await page.locator('html').getAttribute('lang')).toBe('en');
    await expect(page.locator('form.logout button').textContent()).resolves.toBe('Sign out');
    await expect(page.locator('a.lang').textContent()).resolves.toBe('中文');
    await screenshot(page, 'status-en');

    await page.locator('a.lang').click();
    await page.waitForURL(`${village.url}/status`);
    await expect(page.locator('h1').textContent()).resolves.toBe('状态');
    expect(await page.locator('html').getAttribute('lang')).toBe('zh-CN');
    await page.context().close();
  });

  // `user remove` promises "a page already open is signed out at its next request"; a demoted user loses the installer pages likewise.
  it('signs a removed user out at the next request, as `user remove` says', async () => {
    const sun: ConsoleAccount = { name: 'sun', role: 'official', password: 'sun-secret-44' };
    await addAccount(village.configPath, sun);
    const client = new ConsoleHttpClient(village.directUrl);
    expect((await client.login(sun.name, sun.password)).status).toBe(303);
    expect((await client.get('/status')).status).toBe(200);
    expect(await villageCli(['user', 'remove', sun.name, '--config', village.configPath])).toMatch(/signed out at its next request/);
    expect((await client.get('/status')).status).toBe(303);
  });

  it('reports each sign-in and sign-out to the county, naming the user', async () => {
    const client = new ConsoleHttpClient(village.directUrl);
    expect((await client.login(village.installer.name, village.installer.password)).status).toBe(303);
    expect((await client.postForm('/logout', {})).status).toBe(303);
    await waitFor(
      'the county to receive a login and a logout report naming the user',
      () => {
        const events = village.reportsNaming(village.installer.name).map((m) => JSON.stringify(m.payload));
        return events.some((e) => e.includes('"login"')) && events.some((e) => e.includes('"logout"'));
      },
      10_000,
    );
  });
});

describe('the office console: a session that expired', () => {
  const browser = useConsoleBrowser();
  let village: ConsoleVillageRig;

  beforeAll(async () => {
    // 0.05 minutes: 3 s.
    village = await startConsoleVillage({ brokerUrl, protocolVersion, villageId: 'console-expiry', console: { sessionMinutes: 0.05 } });
  }, 60_000);

  afterAll(async () => {
    await village?.stop();
  });

  it('is signed out by the server once its time is up, even when the client still sends the cookie', async () => {
    const page = await browser.current.newPage('phone');
    await signIn(page, village, village.official);
    // A plain client keeps sending the cookie after its max-age, so what is judged here is the server.
    const client = new ConsoleHttpClient(village.directUrl);
    expect((await client.login(village.official.name, village.official.password)).status).toBe(303);
    const signedInAt = performance.now();
    expect((await client.get('/status')).status).toBe(200);
    const cookie = client.cookies.get('ve_session');

    await waitFor(
      'the server to treat the session as signed out',
      async () => {
        const answer = await client.get('/status');
        return answer.status === 303 && answer.location === '/login?next=%2Fstatus';
      },
      { timeoutMs: 15_000, intervalMs: 250 },
    );
    const lastedMs = performance.now() - signedInAt;
    expect(lastedMs).toBeGreaterThan(2500);
    expect(lastedMs).toBeLessThan(8000);
    // The same cookie again, as a replay would send it: still signed out.
    if (cookie !== undefined) client.cookies.set('ve_session', cookie);
    expect((await client.get('/status')).status).toBe(303);

    await page.goto(`${village.url}/status`);
    expect(pathOf(page)).toBe('/login?next=%2Fstatus');
    await page.context().close();
  });
});
