/**
 * A browser's part in a console test, by hand: a cookie jar over fetch, no redirects followed, and sign-in
 * through the real form (its CSRF token, its cookies). Tests of one page extend it with that page's requests.
 */
export class ConsolePagesClient {
  private readonly cookies = new Map<string, string>();

  constructor(private readonly base: string) {}

  async get(path: string, headers: Record<string, string> = {}): Promise<Response> {
    return this.fetch(path, { method: 'GET', headers });
  }

  async text(path: string): Promise<string> {
    const response = await this.get(path);
    if (response.status !== 200) throw new Error(`GET ${path}: ${response.status}`);
    return response.text();
  }

  async json<T>(path: string): Promise<T> {
    const response = await this.get(path, { accept: 'application/json' });
    if (response.status !== 200) throw new Error(`GET ${path}: ${response.status}`);
    return (await response.json()) as T;
  }

  /** A page, and the CSRF token its scripts use (the meta tag) or, on the login page, its form's. */
  async page(path: string): Promise<{ status: number; text: string; token: string }> {
    const response = await this.get(path);
    const text = await response.text();
    const token = /name="csrf-token" content="([^"]+)"/.exec(text)?.[1] ?? /name="_csrf" value="([^"]+)"/.exec(text)?.[1] ?? '';
    return { status: response.status, text, token };
  }

  /** A JSON POST as a page's script sends it, with `token` in the CSRF header. */
  async postJson(path: string, body: unknown, token: string): Promise<{ status: number; json: Record<string, unknown> }> {
    const response = await this.fetch(path, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json', 'x-csrf-token': token },
      body: JSON.stringify(body),
    });
    return { status: response.status, json: (await response.json()) as Record<string, unknown> };
  }

  /** Signs in with the login form; the session cookie is kept for the requests that follow. */
  async signIn(name: string, password: string): Promise<void> {
    const { token } = await this.page('/login');
    if (token === '') throw new Error('the login form has no CSRF token');
    const response = await this.fetch('/login', {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ name, password, _csrf: token }).toString(),
    });
    if (response.status !== 303 || response.headers.get('location') !== '/status') throw new Error(`sign-in refused: ${response.status}`);
  }

  /** Any request, with the cookies kept so far; the cookies it sets are kept (or dropped, when cleared). */
  async fetch(path: string, init: RequestInit = {}): Promise<Response> {
    const headers = new Headers(init.headers);
    const cookie = [...this.cookies].map(([name, value]) => `${name}=${value}`).join('; ');
    if (cookie !== '') headers.set('cookie', cookie);
    const response = await fetch(new URL(path, this.base), { ...init, headers, redirect: 'manual' });
    for (const line of response.headers.getSetCookie()) {
      const [pair = ''] = line.split(';');
      const at = pair.indexOf('=');
      const name = pair.slice(0, at).trim();
      const value = pair.slice(at + 1).trim();
      if (value === '' || /max-age=0|expires=thu, 01 jan 1970/i.test(line)) this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
    return response;
  }
}
