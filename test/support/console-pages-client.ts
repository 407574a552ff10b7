/**
 * A browser's part in a console test, by hand: a cookie jar over fetch, no redirects followed, and sign-in
 * through the real form (its CSRF token, its cookies).
 */
export class ConsolePagesClient {
  private readonly cookies = new Map<string, string>();

  constructor(private readonly base: string) {}

  async get(path: string, headers: Record<string, string> = {}): Promise<Response> {
    return this.request(path, { method: 'GET', headers });
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

  /** Signs in with the login form; the session cookie is kept for the requests that follow. */
  async signIn(name: string, password: string): Promise<void> {
    const form = await this.text('/login');
    const token = /name="_csrf" value="([^"]+)"/.exec(form)?.[1];
    if (token === undefined) throw new Error('the login form has no CSRF token');
    const response = await this.request('/login', {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ name, password, _csrf: token }).toString(),
    });
    if (response.status !== 303 || response.headers.get('location') !== '/status') throw new Error(`sign-in refused: ${response.status}`);
  }

  private async request(path: string, init: { method: string; headers: Record<string, string>; body?: string }): Promise<Response> {
    const cookie = [...this.cookies].map(([name, value]) => `${name}=${value}`).join('; ');
    const response = await fetch(new URL(path, this.base), {
      ...init,
      headers: { ...init.headers, ...(cookie === '' ? {} : { cookie }) },
      redirect: 'manual',
    });
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
