import { mediaLibraryFile, type Programme, type ScheduleDocument } from '../contract/schedule.ts';
import type { PlayRequest } from '../broadcast/types.ts';
import { ProgrammeSlots } from './programme-slots.ts';
import { QuietHours } from './quiet-hours.ts';
import type { ScheduleSource, MediaNeed } from './types.ts';
import { ZoneCalendar } from './zone-calendar.ts';

/** One programme of the running schedule with what the scheduler needs to time it. */
export interface RunningProgramme {
  programme: Programme;
  slots: ProgrammeSlots;
}

/** A verified schedule document, ready to run: its zone, its quiet hours, each programme's slots. */
export class RunningSchedule {
  readonly calendar: ZoneCalendar;
  readonly quiet: QuietHours;
  readonly programmes: ReadonlyMap<string, RunningProgramme>;

  constructor(
    readonly document: ScheduleDocument,
    readonly source: ScheduleSource,
  ) {
    this.calendar = new ZoneCalendar(document.timezone);
    this.quiet = new QuietHours(document.quietHours, this.calendar);
    this.programmes = new Map(
      document.programmes.map((programme) => [programme.id, { programme, slots: new ProgrammeSlots(programme, this.calendar) }]),
    );
  }

  get version(): number {
    return this.document.version;
  }
}

/** The media a programme plays, as the library knows it; undefined for spoken text. */
export function mediaNeedOf(programme: Programme): MediaNeed | undefined {
  const { content } = programme;
  if (content.kind !== 'media') return undefined;
  return { sha256: content.sha256, url: content.url, size: content.size, file: mediaLibraryFile(content) };
}

/** One firing as the broadcast controller's request: `scheduled`, so anything more urgent preempts it. */
export function programmeRequest(options: {
  programme: Programme;
  slot: number;
  zoneIds: readonly string[];
  /** After this it is not started any more (the grace window): a late programme is a wrong programme. */
  expiresAt: number;
}): PlayRequest {
  const { programme, slot } = options;
  const media = mediaNeedOf(programme);
  return {
    id: firingRequestId(programme.id, slot),
    priority: 'scheduled',
    status: 'actual',
    zones: programme.zones === 'all' ? options.zoneIds : programme.zones,
    content:
      media === undefined
        ? (programme.content as Extract<Programme['content'], { kind: 'tts' }>)
        : { kind: 'media', file: media.file, sha256: media.sha256 },
    chime: programme.chime,
    repeat: programme.repeat,
    ...(programme.volume === undefined ? {} : { volume: programme.volume }),
    expiresAt: options.expiresAt,
    origin: 'schedule',
  };
}

/** Unique per programme and slot, readable in a report: `schedule:fazhi-morning:1796515800`. */
export function firingRequestId(programmeId: string, slot: number): string {
  return `schedule:${programmeId}:${Math.floor(slot / 1000)}`;
}
