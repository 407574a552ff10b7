import type { Session } from 'fastify';

type Callback = (error?: unknown) => void;
type GetCallback = (error: unknown, session?: Session | null) => void;

/**
 * Sessions in memory, as @fastify/session's own store keeps them, but forgotten once expired (that store keeps
 * every session until restart) and at most `maxSessions` of them, the oldest going first: a village office has
 * a handful of users, and a loop of sign-ins must not grow the service without end.
 */
export class ExpiringSessionStore {
  private readonly sessions = new Map<string, Session>();

  constructor(
    private readonly now: () => number,
    private readonly maxSessions = 200,
  ) {}

  get size(): number {
    return this.sessions.size;
  }

  set(sessionId: string, session: Session, callback: Callback): void {
    this.sweep();
    this.sessions.delete(sessionId);
    this.sessions.set(sessionId, session);
    if (this.sessions.size > this.maxSessions) this.sessions.delete(this.sessions.keys().next().value!);
    callback();
  }

  get(sessionId: string, callback: GetCallback): void {
    const session = this.sessions.get(sessionId);
    if (session !== undefined && this.expired(session)) {
      this.sessions.delete(sessionId);
      callback(null, null);
      return;
    }
    callback(null, session ?? null);
  }

  destroy(sessionId: string, callback: Callback): void {
    this.sessions.delete(sessionId);
    callback();
  }

  private sweep(): void {
    for (const [id, session] of this.sessions) if (this.expired(session)) this.sessions.delete(id);
  }

  private expired(session: Session): boolean {
    const expires = session.cookie.expires;
    return expires !== null && expires !== undefined && new Date(expires).getTime() <= this.now();
  }
}
