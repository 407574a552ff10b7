import { describe, expect, it } from 'vitest';
import { TrustedClock, type ClockState, type SystemClockPolicy } from '../../src/platform/trusted-clock.ts';

/** A Pi whose wall clock is `behindMs` behind real time, with a monotonic clock the test moves. */
function pi(policy: SystemClockPolicy, behindMs: number, flag = false) {
  const real = { now: 1_800_000_000_000 };
  let mono = 1000;
  const state = { flag };
  const clock = new TrustedClock({
    policy,
    systemNow: () => real.now - behindMs,
    monotonic: () => mono,
    flagExists: () => state.flag,
  });
  const events: ClockState[] = [];
  clock.onCorrected((s) => events.push(s));
  const pass = (ms: number) => {
    real.now += ms;
    mono += ms;
  };
  return { clock, real, state, events, pass };
}

describe('TrustedClock', () => {
  it('under timesyncd is not trusted until the flag appears, then says so once', () => {
    const { clock, state, events } = pi('timesyncd', 0);
    expect(clock.refresh()).toBe(false);
    expect(clock.state()).toEqual({ trusted: false, source: 'none', correctionMs: 0 });
    state.flag = true;
    expect(clock.refresh()).toBe(true);
    expect(clock.refresh()).toBe(false);
    expect(clock.state()).toEqual({ trusted: true, source: 'system', correctionMs: 0 });
    expect(events).toHaveLength(1);
  });

  it('is never earlier than the newest verified iat, carried forward by the monotonic clock', () => {
    const { clock, real, events, pass } = pi('untrusted', 10 * 60_000);
    expect(clock.now()).toBe(real.now - 10 * 60_000);
    clock.observe(Math.floor(real.now / 1000));
    expect(clock.state()).toMatchObject({ trusted: true, source: 'county' });
    expect(Math.abs(clock.now() - real.now)).toBeLessThan(1000);
    pass(30_000);
    expect(Math.abs(clock.now() - real.now)).toBeLessThan(1000);
    expect(events).toHaveLength(1);
  });

  it('cannot be moved back by a replayed old command', () => {
    const { clock, real } = pi('untrusted', 10 * 60_000);
    clock.observe(Math.floor(real.now / 1000));
    const before = clock.now();
    clock.observe(Math.floor(real.now / 1000) - 3600);
    expect(clock.now()).toBe(before);
  });

  it('uses the system clock when it is ahead of the floor (a trusted clock is not held back)', () => {
    const { clock, real } = pi('trusted', 0);
    clock.observe(Math.floor(real.now / 1000) - 120);
    expect(clock.now()).toBe(real.now);
    expect(clock.state()).toEqual({ trusted: true, source: 'system', correctionMs: 0 });
  });

  it('reports a correction of more than a second, and not jitter', () => {
    const { clock, real, events } = pi('trusted', 5 * 60_000);
    clock.observe(Math.floor(real.now / 1000));
    expect(events).toHaveLength(1);
    expect(events[0]!.correctionMs).toBeGreaterThan(4 * 60_000);
    clock.observe(Math.floor(real.now / 1000) + 0.5);
    expect(events).toHaveLength(1);
  });
});
