import { request } from 'node:http';

/** One answer of the console, read whole; redirects are not followed, so a test sees them. */
export interface ConsoleResponse {
  status: number;
  /** `location` of a redirect, or undefined. */
  location: string | undefined;
  contentType: string;
  body: string;
}

/**
 * A client of the office console without a browser: keeps its cookies (and, unlike a browser, sends them after
 * their max-age, so a test can see what the *server* does with an expired session) and reads the CSRF token of
 * the last form it fetched. `localAddress` (any 127.x.y.z) makes it another client address for the lock-out.
 */
export class ConsoleHttpClient {
  readonly cookies = new Map<string, string>();
  /** The `_csrf` of the last page fetched that had one. */
  csrfToken: string | undefined;

  constructor(
    readonly baseUrl: string,
    private readonly options: { localAddress?: string } = {},
  ) {}

  get(path: string, headers: Record<string, string> = {}): Promise<ConsoleResponse> {
    return this.send('GET', path, undefined, headers);
  }

  /** A form post, with the CSRF token of the last page unless `csrf` says otherwise (`null`: none at all). */
  postForm(path: string, fields: Record<string, string>, csrf: string | null | undefined = this.csrfToken): Promise<ConsoleResponse> {
    const form = new URLSearchParams(fields);
    if (csrf !== null && csrf !== undefined) form.set('_csrf', csrf);
    return this.send('POST', path, form.toString(), { 'content-type': 'application/x-www-form-urlencoded' });
  }

  /** Fetches the form, then signs in; the answer is the POST's (303 to `next` when it worked). */
  async login(name: string, password: string): Promise<ConsoleResponse> {
    await this.get('/login');
    return this.postForm('/login', { name, password });
  }

  private send(method: string, path: string, body: string | undefined, headers: Record<string, string>): Promise<ConsoleResponse> {
    const url = new URL(path, this.baseUrl);
    const cookie = [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
    return new Promise((resolve, reject) => {
      const req = request(
        url,
        {
          method,
          ...(this.options.localAddress === undefined ? {} : { localAddress: this.options.localAddress }),
          headers: {
            ...(cookie === '' ? {} : { cookie }),
            ...(body === undefined ? {} : { 'content-length': Buffer.byteLength(body) }),
            ...headers,
          },
          timeout: 15_000,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('end', () => {
            for (const line of res.headers['set-cookie'] ?? []) this.keepCookie(line);
            const text = Buffer.concat(chunks).toString('utf8');
            const token = /name="_csrf" value="([^"]+)"/.exec(text)?.[1];
            if (token !== undefined) this.csrfToken = token;
            resolve({
              status: res.statusCode ?? 0,
              location: res.headers.location,
              contentType: res.headers['content-type'] ?? '',
              body: text,
            });
          });
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new Error(`${method} ${url} timed out`)));
      req.on('error', reject);
      req.end(body);
    });
  }

  private keepCookie(line: string): void {
    const [pair = ''] = line.split(';');
    const at = pair.indexOf('=');
    if (at < 1) return;
    const name = pair.slice(0, at).trim();
    const value = pair.slice(at + 1).trim();
    // A cookie cleared by the server (empty, or expired in the past) is dropped, as a browser would.
    if (value === '' || /;\s*expires=Thu, 01 Jan 1970/i.test(line)) this.cookies.delete(name);
    else this.cookies.set(name, value);
  }
}
