import { describe, expect, it } from 'vitest';
import { LocalAlarm, localAlarmRequestId } from '../../src/broadcast/local-alarm.ts';
import type { PlayRequest } from '../../src/broadcast/types.ts';

const announcement = { content: { kind: 'tts' as const, text: '有人按下报警按钮' }, repeat: 3 };

function rig(options: { announcement?: typeof announcement | null } = {}) {
  const submitted: PlayRequest[] = [];
  const stopped: Array<{ requestId: string; reason: string }> = [];
  const local = new LocalAlarm({
    terminals: [{ id: 'col-square', zone: 'square' }, { id: 'col-school', zone: 'school' }, { id: 'col-nozone' }],
    announcement: options.announcement === null ? undefined : (options.announcement ?? announcement),
    submit: (request) => submitted.push(request),
    stopPlayback: (target, reason) => stopped.push({ requestId: target.requestId, reason }),
  });
  return { local, submitted, stopped };
}

describe('LocalAlarm (local autonomy)', () => {
  it('sounds an overdue alarm in the zone of the column that raised it, and only there', () => {
    const { local, submitted } = rig();
    local.ackOverdue({ id: 'a1', terminal: 'col-school', type: 'button' });
    expect(submitted).toEqual([
      {
        id: localAlarmRequestId('a1'),
        priority: 'local-alarm',
        status: 'actual',
        zones: ['school'],
        content: announcement.content,
        chime: false,
        repeat: 3,
        origin: 'local',
      },
    ]);
  });

  it('never sounds a commissioning press (test), a column without a zone, or when no announcement is configured', () => {
    const plain = rig();
    plain.local.ackOverdue({ id: 't1', terminal: 'col-square', type: 'test' });
    plain.local.ackOverdue({ id: 'a2', terminal: 'col-nozone', type: 'button' });
    plain.local.ackOverdue({ id: 'a3', terminal: 'col-unknown', type: 'button' });
    expect(plain.submitted).toEqual([]);

    const unconfigured = rig({ announcement: null });
    unconfigured.local.ackOverdue({ id: 'a4', terminal: 'col-square', type: 'button' });
    expect(unconfigured.submitted).toEqual([]);
  });

  it('stops the local sounding of an alarm once the county acknowledges it, and nothing for other records', () => {
    const { local, stopped } = rig();
    local.acknowledged({ stream: 'fault', id: 'f1' });
    local.acknowledged({ stream: 'report', id: 'r1' });
    expect(stopped).toEqual([]);
    local.acknowledged({ stream: 'alarm', id: 'a1' });
    expect(stopped).toEqual([{ requestId: 'local-alarm-a1', reason: 'the county acknowledged the alarm' }]);
  });
});
