/**
 * The broadcast domain's own vocabulary. County commands, local alarms and the schedule all become a
 * `PlayRequest`; the controller turns requests into relay writes and player runs, and tells what it did
 * through `PlaybackEvent`s (which become durable reports to the county). The words it shares with the
 * county (priorities, statuses, levels, events, content) come from the contract's vocabulary.
 */
import type { BroadcastStatus, Content, EmergencyLevel, PlaybackEventKind, Priority } from '../contract/vocabulary.ts';

export interface PlayRequest {
  /** The county command's `jti`, or a local id for local alarms and programmes. */
  id: string;
  priority: Priority;
  level?: EmergencyLevel;
  status: BroadcastStatus;
  /** Zone ids, already resolved (a county `all` becomes every configured zone). */
  zones: readonly string[];
  content: Content;
  /** Play the pre-announce chime first (an `exercise` always gets the drill chime). */
  chime: boolean;
  /** How many times the content is played; 1 by default. */
  repeat: number;
  /** 0–100; the village's volume for the priority when absent (a programme may set its own). */
  volume?: number;
  /** Epoch ms after which it must not start (a county command's `exp`). */
  expiresAt?: number;
  origin: 'county' | 'local' | 'schedule';
  /** Epoch ms it was first accepted, when it is taken up again after a restart cut it off; every report says so. */
  resumedFrom?: number;
}

export interface ZoneFault {
  zone: string;
  amplifier: string;
  fault: string;
}

/** What the controller did with a request; each becomes one report. */
export interface PlaybackEvent {
  event: PlaybackEventKind;
  requestId: string;
  priority: Priority;
  level?: EmergencyLevel;
  status: BroadcastStatus;
  zones: readonly string[];
  /** Zones of this request whose amplifier is faulty right now. */
  faultyZones: readonly ZoneFault[];
  reason?: string;
  at: number;
}

/** One thing to play, as the player sees it. */
export interface PlayJob {
  content: Content;
  /** 0–100, applied by the player's volume command before sound. */
  volume: number;
}

export type PlayOutcome = { outcome: 'finished' } | { outcome: 'stopped' } | { outcome: 'failed'; reason: string };

export interface PlayerRun {
  /**
   * True once the process that makes the sound has been started (media found and checked, every process
   * of its pipeline spawned); false when the run ended before that, and `done` then says why. Never rejects.
   */
  readonly started: Promise<boolean>;
  /** Settles when the process has exited (never rejects). */
  readonly done: Promise<PlayOutcome>;
  /** SIGTERM, then SIGKILL after the kill timeout; resolves when the process is gone. */
  stop(): Promise<void>;
}

/** Plays one job through an external process; the controller sequences chimes, repeats and priorities. */
export interface Player {
  start(job: PlayJob): PlayerRun;
}

export type OutputCheck = { ok: true } | { ok: false; reason: string };

/** The sound output the players play through (an ALSA device), as a port: a check opens it. */
export interface AudioOutput {
  readonly device: string;
  /** Opens the device and closes it again; bounded in time, never rejects. */
  check(): Promise<OutputCheck>;
}

/** The output as last checked: `ok` is null before the first check. */
export interface AudioState {
  device: string;
  ok: boolean | null;
  reason?: string;
  /** Epoch ms of the last check, or null. */
  checkedAt: number | null;
}
