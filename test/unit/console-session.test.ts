import { describe, expect, it } from 'vitest';
import { rmSync, writeFileSync } from 'node:fs';
import type { Session } from 'fastify';
import { ExpiringSessionStore } from '../../src/console/http/session-store.ts';
import { AccountsCache, AccountsFileError, accountWith, writeAccounts } from '../../src/console/auth/accounts.ts';
import { scratchFolder } from '../support/scratch-folder.ts';

const scratch = scratchFolder('console-session-');

function session(expiresAt: number): Session {
  return { cookie: { originalMaxAge: 1000, expires: new Date(expiresAt) } } as Session;
}

function get(store: ExpiringSessionStore, id: string): Session | null | undefined {
  let found: Session | null | undefined;
  store.get(id, (_error, s) => {
    found = s;
  });
  return found;
}

describe('console sessions', () => {
  it('forgets an expired session when asked for it, and every expired one when a new one is kept', () => {
    let now = 0;
    const store = new ExpiringSessionStore(() => now);
    store.set('a', session(1000), () => undefined);
    store.set('b', session(5000), () => undefined);
    expect(get(store, 'a')).not.toBeNull();
    now = 1000;
    expect(get(store, 'a')).toBeNull();
    now = 6000;
    store.set('c', session(9000), () => undefined);
    expect(store.size).toBe(1);
  });

  it('keeps at most maxSessions, dropping the oldest first', () => {
    const store = new ExpiringSessionStore(() => 0, 2);
    for (const id of ['a', 'b', 'c']) store.set(id, session(1000), () => undefined);
    expect([get(store, 'a'), get(store, 'b') !== null, get(store, 'c') !== null]).toEqual([null, true, true]);
    store.destroy('b', () => undefined);
    expect(store.size).toBe(1);
  });
});

describe('the accounts file as the server reads it', () => {
  const hashed = {
    N: 1024,
    r: 8,
    p: 1,
    salt: Buffer.alloc(16, 1).toString('base64'),
    hash: Buffer.alloc(32, 2).toString('base64'),
    createdAt: '2026-12-06T00:00:00.000Z',
  };

  it('is read again when it changes, and a damaged file is an error that lets nobody in', () => {
    const path = `${scratch.fresh('users')}.json`;
    const cache = new AccountsCache(path);
    expect(cache.current()).toEqual({ format: 1, users: [] });
    writeAccounts(path, { format: 1, users: [accountWith('wang', 'official', hashed)] });
    expect(cache.current()).toMatchObject({ users: [{ name: 'wang', role: 'official' }] });
    writeAccounts(path, { format: 1, users: [accountWith('wang', 'installer', hashed), accountWith('li', 'official', hashed)] });
    expect(cache.current()).toMatchObject({ users: [{ name: 'wang', role: 'installer' }, { name: 'li' }] });
    writeFileSync(path, '{"format": 2}');
    expect(cache.current()).toBeInstanceOf(AccountsFileError);
    rmSync(path);
    expect(cache.current()).toEqual({ format: 1, users: [] });
  });
});
