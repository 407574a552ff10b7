import { isoWithOffset, type Now } from '../../platform/time.ts';
import { html, t, type Html, type Lang } from './html.ts';

/**
 * Times as the village reads them. The service writes ISO times with the village's own offset, so the wall
 * time is the text before the offset: shown as it is, never shifted to the browser's zone (an office PC set
 * to another zone must not move a press by hours).
 */
export function timeText(iso: string, now: Now): Html {
  const today = isoWithOffset(now()).slice(0, 10);
  // Date and time in spans of their own: a narrow column may break between them, never inside one.
  if (iso.slice(0, 10) === today) return html`<time datetime="${iso}"><span>${iso.slice(11, 19)}</span></time>`;
  return html`<time datetime="${iso}"><span>${iso.slice(0, 10)}</span> <span>${iso.slice(11, 16)}</span></time>`;
}

/**
 * A length of time, coarse on purpose: a region that refreshes every two seconds and is read by a screen
 * reader must not change its words every two seconds, so nothing finer than a minute is said.
 */
export function durationText(lang: Lang, seconds: number): string {
  const minutes = Math.floor(seconds / 60);
  if (minutes < 1) return t(lang, '不到 1 分钟', 'under a minute');
  if (minutes < 60) return t(lang, `${minutes} 分钟`, `${minutes} min`);
  const hours = Math.floor(minutes / 60);
  if (hours < 24) return t(lang, `${hours} 小时 ${minutes % 60} 分钟`, `${hours} h ${minutes % 60} min`);
  return t(lang, `${Math.floor(hours / 24)} 天 ${hours % 24} 小时`, `${Math.floor(hours / 24)} d ${hours % 24} h`);
}

export function bytesText(n: number): string {
  if (n < 1024 ** 2) return `${Math.round(n / 1024)} KiB`;
  // Whole MiB: a tenth would change with every log line written, and be read out at every refresh.
  if (n < 1024 ** 3) return `${Math.round(n / 1024 ** 2)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}
