import type { FastifyReply, FastifyRequest } from 'fastify';
import * as z from 'zod';
import type { ConsolePage } from '../http/route-context.ts';
import { t } from './html.ts';
import { AnnounceRequestError, parseAnnounce, readAnnounceMultipart } from './announce-request.ts';
import { announceView, type AnnounceFormValues } from './announce-view.ts';

/** Broadcast ids are ours (`console:<uuid>`) or the county's `jti`: short, printable. */
const idSchema = z.string().min(1).max(200);
const stopFormSchema = z.object({ id: idSchema });
/** A refusal by the village (quiet hours, a zone it has not) rather than a bad request: the same request may pass later. */
const refusedStatus = 409;

const blankForm: AnnounceFormValues = { text: '', zones: [], repeat: 1, chime: true };

/**
 * Announce: text to speak or a voice recorded in the browser, to chosen zones at `announcement` priority, then
 * followed to its end, with a stop for it and for anything else playing. The page works without JavaScript for
 * a text announcement (form post, then a follow view); the script adds recording, sending without reload
 * and polling. The API under `/api/` is what the script uses.
 */
export const announcePage: ConsolePage = {
  path: '/announce',
  role: 'official',
  label: (lang) => t(lang, '广播', 'Announce'),
  register(app, ctx) {
    const official = ctx.guard('official');
    const village = ctx.village;
    const zoneIds = () => village.zones.map((z) => z.id);
    const limits = () => ({ zoneIds: zoneIds(), maxRecordingSeconds: ctx.config.maxRecordingSeconds });

    const sendPage = (
      request: FastifyRequest,
      reply: FastifyReply,
      options: { status?: number; error?: string; values?: AnnounceFormValues; follow?: string },
    ) => {
      const lang = ctx.lang(request);
      const followed =
        options.follow === undefined ? undefined : (village.broadcast(options.follow) ?? { id: options.follow, missing: true as const });
      const body = announceView({
        lang,
        csrfToken: ctx.csrfToken(reply),
        zones: village.zones,
        maxRecordingSeconds: ctx.config.maxRecordingSeconds,
        values: options.values ?? blankForm,
        ...(options.error === undefined ? {} : { error: options.error }),
        ...(followed === undefined ? {} : { followed }),
        active: village.activeBroadcasts(),
      });
      return reply
        .code(options.status ?? 200)
        .type('text/html; charset=utf-8')
        .send(
          ctx.page(request, reply, { title: announcePage.label(lang), body, path: '/announce', scripts: ['wav-encoder.js', 'announce.js'] }).text,
        );
    };

    app.get<{ Querystring: { follow?: string } }>('/announce', { preHandler: official }, async (request, reply) => {
      const follow = idSchema.safeParse(request.query.follow);
      return sendPage(request, reply, follow.success ? { follow: follow.data } : {});
    });

    // The plain form, for a text announcement without JavaScript.
    app.post('/announce', { preHandler: [official, ctx.csrf] }, async (request, reply) => {
      const fields = (request.body ?? {}) as Record<string, string | string[] | undefined>;
      const values = formValues(fields);
      const parsed = parseAnnounce(fields, undefined, limits());
      if (!parsed.ok) return sendPage(request, reply, { status: 400, error: parsed.error, values });
      const result = await village.announce(parsed.order, ctx.user(request));
      if (!result.ok) return sendPage(request, reply, { status: refusedStatus, error: result.reason, values });
      return reply.redirect(`/announce?follow=${encodeURIComponent(result.id)}`, 303);
    });

    app.post('/announce/stop', { preHandler: [official, ctx.csrf] }, async (request, reply) => {
      const parsed = stopFormSchema.safeParse(request.body);
      if (!parsed.success) return sendPage(request, reply, { status: 400, error: 'id: missing' });
      village.stop(parsed.data.id, ctx.user(request));
      return reply.redirect(`/announce?follow=${encodeURIComponent(parsed.data.id)}`, 303);
    });

    app.post('/api/announce', { preHandler: [official, ctx.csrf] }, async (request, reply) => {
      let input: Awaited<ReturnType<typeof readAnnounceMultipart>>;
      try {
        input = await readAnnounceMultipart(request);
      } catch (error) {
        if (error instanceof AnnounceRequestError) return reply.code(error.statusCode).send({ error: error.message });
        throw error;
      }
      const parsed = parseAnnounce(input.fields, input.recording, limits());
      const user = ctx.user(request);
      if (!parsed.ok) {
        ctx.logger.warn({ user: user.name, reason: parsed.error }, 'console announcement refused: bad request');
        return reply.code(400).send({ error: parsed.error });
      }
      const result = await village.announce(parsed.order, user);
      if (!result.ok) return reply.code(refusedStatus).send({ refused: result.reason });
      return reply.code(202).send({ id: result.id });
    });

    app.get('/api/broadcasts', { preHandler: official }, async () => village.activeBroadcasts());

    app.get<{ Params: { id: string } }>('/api/broadcasts/:id', { preHandler: official }, async (request, reply) => {
      const view = village.broadcast(request.params.id);
      if (view === undefined) return reply.code(404).send({ error: 'id: no such broadcast on record' });
      return view;
    });

    app.post<{ Params: { id: string } }>('/api/broadcasts/:id/stop', { preHandler: [official, ctx.csrf] }, async (request) => ({
      stopped: village.stop(request.params.id, ctx.user(request)),
    }));
  },
};

/** The form's values as typed, to fill it again after a refusal; nothing here is trusted. */
function formValues(fields: Record<string, string | string[] | undefined>): AnnounceFormValues {
  const one = (v: string | string[] | undefined) => (Array.isArray(v) ? v.at(-1) : v);
  const zones = fields['zones'];
  const repeat = Number(one(fields['repeat']));
  return {
    text: one(fields['text']) ?? '',
    zones: zones === undefined ? [] : Array.isArray(zones) ? zones : [zones],
    repeat: Number.isInteger(repeat) && repeat >= 1 && repeat <= 5 ? repeat : 1,
    chime: one(fields['chime']) === 'on',
  };
}
