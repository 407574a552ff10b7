import type { FastifyReply } from 'fastify';
import { html, t, type Html, type Lang } from './html.ts';

/**
 * A part of a page that live.js keeps current: the server renders it whole on the first load (readable before
 * any script runs), and its JSON API returns the same markup, rendered by the same function, which the script
 * merges into the page node by node. So there is one renderer per page, one place for the two languages and
 * the escaping, and a screen reader hears only what changed.
 */
export interface LiveSource {
  /** The JSON API that answers `{ updatedAt, html, …data }`. */
  api: string;
  everyMs: number;
  /** Names the region for a screen reader. */
  label: string;
}

export function liveRegion(source: LiveSource, updatedAt: string, content: Html): Html {
  return html`<section id="live" class="live" aria-live="polite" aria-label="${source.label}" data-live-src="${source.api}" data-live-every="${source.everyMs}" data-updated-at="${updatedAt}">
${content}
</section>`;
}

/**
 * The page around a live region: when it was last brought up to date (outside the region, so that a changing
 * clock is not read out every refresh) and the message shown when a refresh fails.
 */
export function livePage(lang: Lang, updatedAt: string, region: Html): Html {
  return html`<p class="updated">${t(lang, '数据时间', 'Data as of')} <time id="updated-time" datetime="${updatedAt}">${updatedAt.slice(11, 19)}</time><span class="auto"> · ${t(lang, '自动刷新', 'refreshes by itself')}</span></p>
<p id="refresh-error" class="error" role="alert" hidden
  data-unreachable="${t(lang, '无法连接服务，下面显示的是旧数据。', 'The service cannot be reached: what is shown below is old.')}"
  data-failed="${t(lang, '刷新失败，下面显示的是旧数据。', 'Refreshing failed: what is shown below is old.')}"
  data-signed-out="${t(lang, '登录已失效，正在转到登录页……', 'You are signed out: going to the sign-in page…')}"></p>
${region}`;
}

export function sendPage(reply: FastifyReply, page: Html): FastifyReply {
  return reply.type('text/html; charset=utf-8').header('cache-control', 'no-store').send(page.text);
}

/** A live region's API answer: the data for any client, and the region's markup for the page's own script. */
export function sendLive(reply: FastifyReply, updatedAt: string, data: Record<string, unknown>, region: Html): FastifyReply {
  return reply.header('cache-control', 'no-store').send({ updatedAt, ...data, html: region.text });
}
