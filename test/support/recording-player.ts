import type { PlayJob, Player, PlayerRun, PlayOutcome } from '../../src/broadcast/types.ts';

/**
 * A player that records what it was asked to play and finishes each job after `durationMs` (or when
 * told). For tests of what reaches the loudspeakers; the real process player has its own tests.
 */
export class RecordingPlayer implements Player {
  readonly started: PlayJob[] = [];
  private readonly running = new Set<(outcome: PlayOutcome) => void>();

  constructor(private readonly durationMs = 20) {}

  start(job: PlayJob): PlayerRun {
    this.started.push(job);
    let finish: (outcome: PlayOutcome) => void = () => {};
    const done = new Promise<PlayOutcome>((resolve) => {
      finish = (outcome) => {
        this.running.delete(finish);
        clearTimeout(timer);
        resolve(outcome);
      };
    });
    this.running.add(finish);
    const timer = setTimeout(() => finish({ outcome: 'finished' }), this.durationMs);
    return {
      started: Promise.resolve(true),
      done,
      stop: async () => {
        finish({ outcome: 'stopped' });
      },
    };
  }

  get playing(): number {
    return this.running.size;
  }
}
