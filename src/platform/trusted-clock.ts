import { existsSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import type { Now } from './time.ts';

/**
 * One notion of trusted time for a Pi without a battery clock. The system clock is trusted once it is
 * synchronised (systemd-timesyncd's flag file, or as configured). Otherwise time is never earlier than the
 * newest `iat` of a verified county command, carried forward by the monotonic clock: that floor only ever
 * moves forward, so a replayed old capture cannot move it back, and it corrects a Pi that booted with a
 * stale clock as soon as the county says anything.
 */

/** `timesyncd`: trusted once the flag file exists; `trusted`: always (an RTC, chrony); `untrusted`: county commands only. */
export type SystemClockPolicy = 'timesyncd' | 'trusted' | 'untrusted';

export interface ClockState {
  trusted: boolean;
  /** What vouches for the time: the synchronised system clock, a county command's `iat`, or nothing. */
  source: 'system' | 'county' | 'none';
  /** How far trusted time is ahead of the system clock (ms); 0 when the system clock is used as is. */
  correctionMs: number;
}

export interface TrustedClockOptions {
  policy: SystemClockPolicy;
  /** systemd-timesyncd writes it once the clock is synchronised. */
  synchronizedFlag?: string;
  systemNow?: Now;
  /** Milliseconds that only move forward, whatever the wall clock does. */
  monotonic?: () => number;
  flagExists?: (path: string) => boolean;
  /** How often `start()` looks for the flag until it appears. */
  flagCheckMs?: number;
}

/** The interface the domain sees: time it can put in a payload, and whether it may be believed. */
export interface Clock {
  now(): number;
  /** Milliseconds since an arbitrary origin, immune to clock changes (intervals only). */
  monotonic(): number;
  state(): ClockState;
}

/** A jump below this is jitter between the county's clock and ours, not a correction. */
const correctionThresholdMs = 1000;

export class TrustedClock implements Clock {
  private readonly systemNow: Now;
  private readonly mono: () => number;
  private readonly flagExists: (path: string) => boolean;
  private readonly flag: string;
  /** Newest verified county `iat` (epoch ms) and the monotonic time it was seen at. */
  private floor: { at: number; seenAt: number } | undefined;
  private synchronized = false;
  private readonly listeners: Array<(state: ClockState) => void> = [];
  private flagCheck: NodeJS.Timeout | undefined;

  constructor(private readonly options: TrustedClockOptions) {
    this.systemNow = options.systemNow ?? Date.now;
    this.mono = options.monotonic ?? (() => performance.now());
    this.flagExists = options.flagExists ?? existsSync;
    this.flag = options.synchronizedFlag ?? '/run/systemd/timesync/synchronized';
  }

  now(): number {
    const system = this.systemNow();
    if (this.floor === undefined) return system;
    return Math.max(system, this.floor.at + (this.mono() - this.floor.seenAt));
  }

  monotonic(): number {
    return this.mono();
  }

  state(): ClockState {
    const system = this.systemTrusted();
    const correctionMs = Math.max(0, this.now() - this.systemNow());
    if (system && correctionMs < correctionThresholdMs) return { trusted: true, source: 'system', correctionMs: 0 };
    if (this.floor !== undefined) return { trusted: true, source: 'county', correctionMs };
    return { trusted: system, source: system ? 'system' : 'none', correctionMs: 0 };
  }

  /** A verified county command was issued at `iat` (epoch seconds): time is at least that from now on. */
  observe(iatSeconds: number): void {
    const at = iatSeconds * 1000;
    const before = this.state();
    if (this.floor !== undefined && at <= this.floor.at + (this.mono() - this.floor.seenAt)) return;
    this.floor = { at, seenAt: this.mono() };
    const after = this.state();
    if (!before.trusted || after.correctionMs - before.correctionMs >= correctionThresholdMs) this.emit(after);
  }

  /** Looks at the synchronisation flag again (call it now and then); returns whether the clock became trusted. */
  refresh(): boolean {
    if (this.synchronized || this.options.policy !== 'timesyncd') return false;
    const wasTrusted = this.state().trusted;
    if (!this.flagExists(this.flag)) return false;
    this.synchronized = true;
    if (!wasTrusted) this.emit(this.state());
    return !wasTrusted;
  }

  /**
   * Under `timesyncd`, looks for the synchronisation flag now and every few seconds until it appears.
   * Nothing waits for it: alarms are relayed with whatever time there is, and say whether it is trusted.
   */
  start(): void {
    this.refresh();
    if (this.state().trusted || this.options.policy !== 'timesyncd') return;
    this.flagCheck = setInterval(() => {
      if (this.synchronized || this.refresh()) this.stop();
    }, this.options.flagCheckMs ?? 5000);
    this.flagCheck.unref?.();
  }

  stop(): void {
    clearInterval(this.flagCheck);
    this.flagCheck = undefined;
  }

  /** Called when time becomes trusted or is corrected by more than a second; keep it from throwing (see `contained`). */
  onCorrected(listener: (state: ClockState) => void): void {
    this.listeners.push(listener);
  }

  private systemTrusted(): boolean {
    switch (this.options.policy) {
      case 'trusted':
        return true;
      case 'untrusted':
        return false;
      case 'timesyncd':
        return this.synchronized;
    }
  }

  private emit(state: ClockState): void {
    for (const listener of this.listeners) listener(state);
  }
}
