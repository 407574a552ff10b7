import type { PlaybackEventKind } from '../../contract/vocabulary.ts';
import type { BroadcastView } from '../types.ts';
import { announceRepeat, announceTextMax } from './announce-request.ts';
import { html, t, type Html, type Lang } from './html.ts';

/** What the form held, to show it again after a refusal. */
export interface AnnounceFormValues {
  text: string;
  zones: readonly string[];
  repeat: number;
  chime: boolean;
}

export interface AnnounceViewInput {
  lang: Lang;
  csrfToken: string;
  zones: ReadonlyArray<{ id: string; label: string }>;
  maxRecordingSeconds: number;
  values: AnnounceFormValues;
  /** A refusal or a bad field, shown in the alert. */
  error?: string;
  /** The broadcast the page follows, if any (`?follow=`), or `missing` for an id the village no longer knows. */
  followed?: BroadcastView | { id: string; missing: true };
  active: readonly BroadcastView[];
}

function stateText(lang: Lang, state: PlaybackEventKind | 'none'): string {
  switch (state) {
    case 'none':
      return t(lang, '还没有发送广播。', 'Nothing sent yet.');
    case 'accepted':
      return t(lang, '已接受，准备播放。', 'Accepted, about to play.');
    case 'queued':
      return t(lang, '排队等待：正在播放更重要的广播。', 'Waiting: something more urgent is playing.');
    case 'started':
      return t(lang, '正在播放。', 'Playing now.');
    case 'finished':
      return t(lang, '播放完毕。', 'Finished.');
    case 'preempted':
      return t(lang, '被紧急广播打断，不会继续播放。', 'Cut off by an emergency broadcast; it will not resume.');
    case 'stopped':
      return t(lang, '已停止。', 'Stopped.');
    case 'failed':
      return t(lang, '播放失败。', 'Playing failed.');
    case 'rejected':
      return t(lang, '被拒绝。', 'Refused.');
    case 'tested':
      return t(lang, '已测试。', 'Tested.');
  }
}

const stateKinds: ReadonlyArray<PlaybackEventKind | 'none'> = [
  'none',
  'accepted',
  'queued',
  'started',
  'finished',
  'preempted',
  'stopped',
  'failed',
  'rejected',
  'tested',
];

function priorityText(lang: Lang, priority: string): string {
  switch (priority) {
    case 'emergency':
      return t(lang, '紧急广播', 'Emergency');
    case 'local-alarm':
      return t(lang, '本村报警', 'Village alarm');
    case 'announcement':
      return t(lang, '通知广播', 'Announcement');
    case 'scheduled':
      return t(lang, '定时节目', 'Programme');
    default:
      return priority;
  }
}

/** The words the page's script shows, in the page's language: the script itself holds none. */
function scriptMessages(lang: Lang, zones: ReadonlyArray<{ id: string; label: string }>): Record<string, unknown> {
  return {
    states: Object.fromEntries(stateKinds.map((k) => [k, stateText(lang, k)])),
    priorities: Object.fromEntries(['emergency', 'local-alarm', 'announcement', 'scheduled'].map((p) => [p, priorityText(lang, p)])),
    zones: Object.fromEntries(zones.map((z) => [z.id, z.label])),
    by: t(lang, '发起人', 'by'),
    stop: t(lang, '停止', 'Stop'),
    noneActive: t(lang, '现在没有正在播放或等待的广播。', 'Nothing is playing or waiting now.'),
    sending: t(lang, '正在发送…', 'Sending…'),
    noRecording: t(lang, '请先录音。', 'Record something first.'),
    noMicrophone: t(lang, '无法使用麦克风：', 'The microphone cannot be used: '),
    noMicrophoneSupport: t(
      lang,
      '这个浏览器不能录音（需要 HTTPS 或本机地址）。',
      'This browser cannot record here (it needs HTTPS or a local address).',
    ),
    recording: t(lang, '正在录音', 'Recording'),
    recorded: t(lang, '录音长度', 'Recorded'),
    tooLongStopped: t(lang, '已到最长录音时间，录音已停止。', 'The longest recording allowed was reached; recording stopped.'),
    connectionLost: t(lang, '与广播主机的连接中断，正在重试…', 'Lost the connection to the village unit; retrying…'),
    forgotten: t(lang, '这个广播已不在记录中。', 'This broadcast is no longer on record.'),
    stopFailed: t(lang, '没有可停止的：它已经结束了。', 'Nothing to stop: it had already ended.'),
    failed: t(lang, '请求失败：', 'Request failed: '),
  };
}

export function describeBroadcast(lang: Lang, b: BroadcastView, zoneLabels: ReadonlyMap<string, string>): string {
  const zones = b.zones.map((z) => zoneLabels.get(z) ?? z).join(t(lang, '、', ', '));
  const by = b.by === null ? '' : t(lang, `（${b.by}）`, ` (by ${b.by})`);
  return `${priorityText(lang, b.priority)}${by} · ${zones}`;
}

function lastState(b: BroadcastView): PlaybackEventKind {
  return b.steps.at(-1)?.event ?? 'accepted';
}

export function announceView(v: AnnounceViewInput): Html {
  const { lang } = v;
  const zoneLabels = new Map(v.zones.map((z) => [z.id, z.label]));
  const followed = v.followed !== undefined && !('missing' in v.followed) ? v.followed : undefined;
  const followedId = v.followed?.id;
  const state = followed === undefined ? undefined : lastState(followed);
  const messages = JSON.stringify(scriptMessages(lang, v.zones));
  const onlyZone = v.zones.length === 1 ? v.zones[0]!.id : undefined;
  return html`<div class="announce" id="announce" data-messages="${messages}" data-max-seconds="${v.maxRecordingSeconds}">
<form id="announce-form" method="post" action="/announce" class="card" novalidate>
  <input type="hidden" name="_csrf" value="${v.csrfToken}">
  <fieldset class="choices">
    <legend>${t(lang, '广播什么', 'What to announce')}</legend>
    <label class="choice"><input type="radio" name="kind" value="text" checked> ${t(lang, '文字（由机器朗读）', 'Text (read out by the machine)')}</label>
    <label class="choice"><input type="radio" name="kind" value="recording" disabled aria-describedby="record-needs"> ${t(lang, '现场录音', 'A voice recording')}</label>
    <p id="record-needs" class="hint" data-without-script>${t(lang, '录音需要开启 JavaScript 和麦克风。', 'Recording needs JavaScript and a microphone.')}</p>
  </fieldset>
  <div id="announce-text-part">
    <label for="announce-text">${t(lang, '广播内容', 'Text to read out')}</label>
    <textarea id="announce-text" name="text" rows="4" maxlength="${announceTextMax}">${v.values.text}</textarea>
  </div>
  <fieldset id="announce-recorder" class="recorder" hidden>
    <legend>${t(lang, '录音', 'Recording')}</legend>
    <div class="recorder-buttons">
      <button type="button" id="record-start" class="primary">${t(lang, '开始录音', 'Start recording')}</button>
      <button type="button" id="record-stop" disabled>${t(lang, '停止录音', 'Stop recording')}</button>
    </div>
    <label for="record-level">${t(lang, '麦克风音量', 'Microphone level')}</label>
    <meter id="record-level" min="0" max="1" low="0.05" high="0.9" optimum="0.5" value="0">0</meter>
    <p id="record-time" class="hint">${t(lang, `最长 ${v.maxRecordingSeconds} 秒`, `Up to ${v.maxRecordingSeconds} s`)}</p>
    <label for="record-playback">${t(lang, '发送前试听', 'Listen before sending')}</label>
    <audio id="record-playback" controls preload="none"></audio>
    <button type="button" id="record-discard" disabled>${t(lang, '删除录音', 'Discard the recording')}</button>
  </fieldset>
  <fieldset class="choices">
    <legend>${t(lang, '广播区域（至少选一个）', 'Zones (at least one)')}</legend>
    ${v.zones.map(
      (z) =>
        html`<label class="choice"><input type="checkbox" name="zones" value="${z.id}"${v.values.zones.includes(z.id) || z.id === onlyZone ? html` checked` : ''}> ${z.label}</label>`,
    )}
  </fieldset>
  <div class="row">
    <div>
      <label for="announce-repeat">${t(lang, `播放次数（${announceRepeat.min}–${announceRepeat.max}）`, `Times to play (${announceRepeat.min}–${announceRepeat.max})`)}</label>
      <input id="announce-repeat" name="repeat" type="number" inputmode="numeric" min="${announceRepeat.min}" max="${announceRepeat.max}" value="${v.values.repeat}">
    </div>
    <label class="choice"><input id="announce-chime" name="chime" type="checkbox"${v.values.chime ? html` checked` : ''}> ${t(lang, '播放前响提示音', 'Chime first')}</label>
  </div>
  <p id="announce-error" class="error" role="alert">${v.error ?? ''}</p>
  <button type="submit" id="announce-send" class="primary">${t(lang, '发送广播', 'Send the announcement')}</button>
</form>
<section class="card" aria-labelledby="announce-progress-title">
  <h2 id="announce-progress-title">${t(lang, '广播进度', 'Progress')}</h2>
  <div id="announce-progress" aria-live="polite"${followedId === undefined ? '' : html` data-broadcast="${followedId}"`}${state === undefined ? '' : html` data-state="${state}"`}>
    <p class="progress-state">${
      v.followed !== undefined && 'missing' in v.followed
        ? t(lang, '这个广播已不在记录中。', 'This broadcast is no longer on record.')
        : stateText(lang, state ?? 'none')
    }</p>
    ${followed === undefined ? '' : html`<p class="progress-what">${describeBroadcast(lang, followed, zoneLabels)}</p>`}
  </div>
  <form method="post" action="/announce/stop" class="stop-form" id="announce-stop-form"${followed?.active === true ? '' : html` hidden`}>
    <input type="hidden" name="_csrf" value="${v.csrfToken}">
    <input type="hidden" name="id" value="${followedId ?? ''}">
    <button type="submit" id="announce-stop" class="danger">${t(lang, '停止这次广播', 'Stop this announcement')}</button>
  </form>
  ${followed === undefined ? '' : html`<p><a class="button" href="/announce?follow=${encodeURIComponent(followed.id)}" data-without-script>${t(lang, '刷新进度', 'Refresh progress')}</a></p>`}
</section>
<section class="card" aria-labelledby="announce-active-title">
  <h2 id="announce-active-title">${t(lang, '正在播放或等待', 'Playing or waiting now')}</h2>
  <ul id="announce-active" class="active-list">
    ${v.active.length === 0 ? html`<li class="none">${t(lang, '现在没有正在播放或等待的广播。', 'Nothing is playing or waiting now.')}</li>` : ''}
    ${v.active.map((b) => activeItem(lang, b, zoneLabels, v.csrfToken))}
  </ul>
</section>
</div>`;
}

function activeItem(lang: Lang, b: BroadcastView, zoneLabels: ReadonlyMap<string, string>, csrfToken: string): Html {
  const what = describeBroadcast(lang, b, zoneLabels);
  return html`<li data-active-broadcast="${b.id}">
      <span class="active-what">${what} — ${stateText(lang, lastState(b))}</span>
      <form method="post" action="/announce/stop" class="stop-form">
        <input type="hidden" name="_csrf" value="${csrfToken}">
        <input type="hidden" name="id" value="${b.id}">
        <button type="submit" class="danger" aria-label="${t(lang, `停止：${what}`, `Stop: ${what}`)}">${t(lang, '停止', 'Stop')}</button>
      </form>
    </li>`;
}
