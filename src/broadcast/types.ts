/**
 * The broadcast domain's own vocabulary. County commands, local alarms and the schedule all become a
 * `PlayRequest`; the controller turns requests into relay writes and player runs, and tells what it did
 * through `PlaybackEvent`s (which become durable reports to the county).
 */

/** Highest first. A higher priority preempts a lower one at once; equal ones queue in order. */
export const priorities = ['emergency', 'local-alarm', 'announcement', 'scheduled'] as const;
export type Priority = (typeof priorities)[number];

/** `actual` plays publicly; `exercise` plays with the drill chime and says so; `test` drives everything but the loudspeakers. */
export const broadcastStatuses = ['actual', 'exercise', 'test'] as const;
export type BroadcastStatus = (typeof broadcastStatuses)[number];

/** 1 = 特别重大 (particularly serious) … 4 = 一般 (general); emergencies only. */
export type EmergencyLevel = 1 | 2 | 3 | 4;

export type Content =
  | { kind: 'tts'; text: string }
  /** A file in the local media library, by name; `sha256` must match its bytes or nothing plays. */
  | { kind: 'media'; file: string; sha256: string };

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
  /** Epoch ms after which it must not start (a county command's `exp`). */
  expiresAt?: number;
  origin: 'county' | 'local' | 'schedule';
  /** Epoch ms it was first accepted, when it is taken up again after a restart cut it off; every report says so. */
  resumedFrom?: number;
}

export const playbackEvents = ['accepted', 'rejected', 'queued', 'started', 'preempted', 'stopped', 'finished', 'failed', 'tested'] as const;
export type PlaybackEventKind = (typeof playbackEvents)[number];

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
