import { html, t, type Html, type Lang } from './html.ts';

export interface LayoutContent {
  lang: Lang;
  villageName: string;
  title: string;
  body: Html;
  /** Asset names of the page's own scripts (besides console.js, which every page has). */
  scripts: readonly string[];
  /** This page's path, to mark it in the navigation and return to after a language switch. */
  path: string;
  nav: ReadonlyArray<{ path: string; label: string }>;
  /** The signed-in user, or undefined on the login page. */
  user: string | undefined;
  csrfToken: string;
}

/**
 * The frame of every page: a skip link, the village and page name, the navigation, the language switch and
 * sign-out. The CSRF token rides in a meta tag for the page's scripts and in each form; no inline script or
 * style, so the content security policy can forbid them.
 */
export function layout(c: LayoutContent): Html {
  const other = c.lang === 'zh' ? { lang: 'en', label: 'English' } : { lang: 'zh', label: '中文' };
  return html`<!doctype html>
<html lang="${c.lang === 'zh' ? 'zh-CN' : 'en'}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="csrf-token" content="${c.csrfToken}">
<title>${c.title} · ${c.villageName}</title>
<link rel="icon" href="/assets/icon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/assets/console.css">
<script src="/assets/console.js" defer></script>
${c.scripts.map((s) => html`<script src="/assets/${s}" defer></script>`)}
</head>
<body>
<a class="skip" href="#main">${t(c.lang, '跳到正文', 'Skip to content')}</a>
<header class="top">
  <p class="village">${c.villageName}</p>
  <div class="tools">
    <a class="lang" href="/lang/${other.lang}?back=${encodeURIComponent(c.path)}" lang="${other.lang === 'zh' ? 'zh-CN' : 'en'}">${other.label}</a>
    ${
      c.user === undefined
        ? ''
        : html`<form method="post" action="/logout" class="logout">
      <input type="hidden" name="_csrf" value="${c.csrfToken}">
      <span class="who">${c.user}</span>
      <button type="submit">${t(c.lang, '退出', 'Sign out')}</button>
    </form>`
    }
  </div>
  ${
    c.nav.length === 0
      ? ''
      : html`<nav aria-label="${t(c.lang, '主菜单', 'Main menu')}"><ul>
    ${c.nav.map((n) => html`<li><a href="${n.path}"${n.path === c.path ? html` aria-current="page"` : ''}>${n.label}</a></li>`)}
  </ul></nav>`
  }
</header>
<main id="main">
<h1>${c.title}</h1>
${c.body}
</main>
</body>
</html>
`;
}

/** A page with one message (refused, not found), without navigation. */
export function messagePage(lang: Lang, title: string, text: string): Html {
  return html`<!doctype html>
<html lang="${lang === 'zh' ? 'zh-CN' : 'en'}">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>${title}</title>
<link rel="icon" href="/assets/icon.svg" type="image/svg+xml"><link rel="stylesheet" href="/assets/console.css"></head>
<body><main id="main"><h1>${title}</h1><p role="alert">${text}</p><p><a class="button" href="/status">${t(lang, '返回', 'Back')}</a></p></main></body>
</html>
`;
}
