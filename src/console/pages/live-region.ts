import type { FastifyReply } from 'fastify';
import { isoWithOffset } from '../../platform/time.ts';
import type { ConsolePage, RouteContext } from '../http/route-context.ts';
import { html, t, type Html, type Lang } from './html.ts';

/**
 * A part of a page that live.js keeps current: the server renders it whole on the first load (readable before
 * any script runs), and its JSON API returns the same markup, rendered by the same function, which the script
 * merges into the page node by node. So there is one renderer per page, one place for the two languages and
 * the escaping, and a screen reader hears only what changed.
 */
interface LiveSource {
  /** The JSON API that answers `{ updatedAt, html, …data }`. */
  api: string;
  everyMs: number;
  /** Names the region for a screen reader. */
  label: string;
}

function liveRegion(source: LiveSource, updatedAt: string, content: Html): Html {
  return html`<section id="live" class="live" aria-live="polite" aria-label="${source.label}" data-live-src="${source.api}" data-live-every="${source.everyMs}" data-updated-at="${updatedAt}">
${content}
</section>`;
}

/**
 * The page around a live region: when it was last brought up to date (outside the region, so that a changing
 * clock is not read out every refresh) and the message shown when a refresh fails.
 */
function livePage(lang: Lang, updatedAt: string, region: Html): Html {
  return html`<p class="updated">${t(lang, '数据时间', 'Data as of')} <time id="updated-time" datetime="${updatedAt}">${updatedAt.slice(11, 19)}</time><span class="auto"> · ${t(lang, '自动刷新', 'refreshes by itself')}</span></p>
<p id="refresh-error" class="error" role="alert" hidden
  data-unreachable="${t(lang, '无法连接服务，下面显示的是旧数据。', 'The service cannot be reached: what is shown below is old.')}"
  data-failed="${t(lang, '刷新失败，下面显示的是旧数据。', 'Refreshing failed: what is shown below is old.')}"
  data-signed-out="${t(lang, '登录已失效，正在转到登录页……', 'You are signed out: going to the sign-in page…')}"></p>
${region}`;
}

function sendPage(reply: FastifyReply, page: Html): FastifyReply {
  return reply.type('text/html; charset=utf-8').header('cache-control', 'no-store').send(page.text);
}

/** A live region's API answer: the data for any client, and the region's markup for the page's own script. */
function sendLive(reply: FastifyReply, updatedAt: string, data: Record<string, unknown>, region: Html): FastifyReply {
  return reply.header('cache-control', 'no-store').send({ updatedAt, ...data, html: region.text });
}

/** A page that is one live region over one piece of the village's state, and the JSON API that keeps it current. */
export interface LivePageSpec<K extends string, T> {
  path: string;
  api: string;
  everyMs: number;
  /** The page's name, in the menu and as its title. */
  label(lang: Lang): string;
  /** The region's name for a screen reader. */
  regionLabel(lang: Lang): string;
  /** The key the API answers the data under, beside `updatedAt` and `html`. */
  key: K;
  load(ctx: RouteContext): T | Promise<T>;
  region(data: T, lang: Lang, ctx: RouteContext): Html;
}

/** The page (`path`, rendered whole on the first load) and its API (`api`: `{ updatedAt, [key]: data, html }`), for officials. */
export function livePageOf<K extends string, T>(spec: LivePageSpec<K, T>): ConsolePage {
  return {
    path: spec.path,
    role: 'official',
    label: spec.label,
    register(app, ctx) {
      const render = async (lang: Lang) => {
        const data = await spec.load(ctx);
        const updatedAt = isoWithOffset(ctx.now());
        const source = { api: spec.api, everyMs: spec.everyMs, label: spec.regionLabel(lang) };
        return { data, updatedAt, region: liveRegion(source, updatedAt, spec.region(data, lang, ctx)) };
      };

      app.get(spec.path, { preHandler: ctx.guard('official') }, async (request, reply) => {
        const lang = ctx.lang(request);
        const { updatedAt, region } = await render(lang);
        const body = livePage(lang, updatedAt, region);
        return sendPage(reply, ctx.page(request, reply, { title: spec.label(lang), body, scripts: ['live.js'], path: spec.path }));
      });

      app.get(spec.api, { preHandler: ctx.guard('official') }, async (request, reply) => {
        const { data, updatedAt, region } = await render(ctx.lang(request));
        return sendLive(reply, updatedAt, { [spec.key]: data }, region);
      });
    },
  };
}
