import type { AlarmType, Content } from '../contract/vocabulary.ts';
import type { PlayRequest } from './types.ts';

export interface LocalAlarmOptions {
  /** `devices` of the config: an alarm column with a `zone` sounds there. */
  terminals: ReadonlyArray<{ id: string; zone?: string | undefined }>;
  /** `broadcast.localAlarm`: what to play; none configured, nothing sounds locally. */
  announcement: { content: Content; repeat: number } | undefined;
  submit: (request: PlayRequest) => void;
  stopPlayback: (target: { requestId: string }, reason: string) => void;
}

/**
 * Local autonomy: when the county has not acknowledged an alarm in time, the village itself sounds it in
 * the zone of the column that raised it, and stops once the county acknowledges (help has been reached).
 * A commissioning press (`test`) never sounds the loudspeakers: it would alarm the whole village.
 */
export class LocalAlarm {
  private readonly zoneOfTerminal: ReadonlyMap<string, string>;

  constructor(private readonly options: LocalAlarmOptions) {
    this.zoneOfTerminal = new Map(options.terminals.flatMap((t) => (t.zone === undefined ? [] : [[t.id, t.zone] as const])));
  }

  /** The county did not acknowledge `alarm` within the ack timeout. */
  ackOverdue(alarm: { id: string; terminal: string; type: AlarmType }): void {
    const zone = this.zoneOfTerminal.get(alarm.terminal);
    const { announcement } = this.options;
    if (zone === undefined || announcement === undefined || alarm.type === 'test') return;
    this.options.submit({
      id: localAlarmRequestId(alarm.id),
      priority: 'local-alarm',
      status: 'actual',
      zones: [zone],
      content: announcement.content,
      chime: false,
      repeat: announcement.repeat,
      origin: 'local',
    });
  }

  /** The county acknowledged a record; for an alarm, its local sounding (if any) has done its job. */
  acknowledged(record: { stream: string; id: string }): void {
    if (record.stream !== 'alarm') return;
    this.options.stopPlayback({ requestId: localAlarmRequestId(record.id) }, 'the county acknowledged the alarm');
  }
}

export function localAlarmRequestId(alarmId: string): string {
  return `local-alarm-${alarmId}`;
}
