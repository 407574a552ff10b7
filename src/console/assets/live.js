// Keeps a page's live region current: polls its JSON API ({ updatedAt, html, …data }) and merges the new markup
// into the page node by node, so that a screen reader hears only what changed and focus and scrolling stay put.
// One request at a time; none while the tab is hidden. A 401 (signed out, session expired) goes to the sign-in page.

(() => {
  const region = document.querySelector('[data-live-src]');
  if (region === null) return;
  const src = region.getAttribute('data-live-src');
  const every = Number(region.getAttribute('data-live-every')) || 2000;
  const errorBox = document.getElementById('refresh-error');
  const updatedTime = document.getElementById('updated-time');
  let timer;
  let inFlight = false;
  let signedOut = false;

  function showError(kind) {
    if (errorBox === null) return;
    const text = errorBox.getAttribute(`data-${kind}`) ?? '';
    if (errorBox.textContent !== text) errorBox.textContent = text;
    errorBox.hidden = false;
  }

  function clearError() {
    if (errorBox !== null && !errorBox.hidden) {
      errorBox.hidden = true;
      errorBox.textContent = '';
    }
  }

  async function refresh() {
    if (inFlight) return;
    inFlight = true;
    const abort = new AbortController();
    const timeout = setTimeout(() => abort.abort(), Math.max(every * 2, 5000));
    try {
      const response = await fetch(src, {
        headers: { accept: 'application/json' },
        cache: 'no-store',
        credentials: 'same-origin',
        signal: abort.signal,
      });
      if (response.status === 401) {
        signedOut = true;
        showError('signed-out');
        stop();
        setTimeout(() => location.assign(`/login?next=${encodeURIComponent(location.pathname)}`), 1000);
        return;
      }
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      const answer = await response.json();
      const fresh = new DOMParser().parseFromString(answer.html, 'text/html').body.firstElementChild;
      if (fresh === null || fresh.nodeName !== region.nodeName) throw new Error('unexpected answer');
      patch(region, fresh);
      if (updatedTime !== null) {
        updatedTime.setAttribute('datetime', answer.updatedAt);
        updatedTime.textContent = String(answer.updatedAt).slice(11, 19);
      }
      clearError();
    } catch (error) {
      showError(error instanceof TypeError || abort.signal.aborted ? 'unreachable' : 'failed');
    } finally {
      clearTimeout(timeout);
      inFlight = false;
    }
  }

  function schedule() {
    stop();
    timer = setTimeout(async () => {
      await refresh();
      if (timer !== undefined) schedule();
    }, every);
  }

  function stop() {
    clearTimeout(timer);
    timer = undefined;
  }

  document.addEventListener('visibilitychange', () => {
    if (signedOut) return;
    if (document.hidden) stop();
    else {
      void refresh();
      schedule();
    }
  });
  schedule();

  // The merge: same node kind and name → keep the node and update it; rows with a data-key are matched by key,
  // so a new alarm at the top moves the others down instead of rewriting every row.
  function keyOf(node) {
    return node.nodeType === Node.ELEMENT_NODE ? node.getAttribute('data-key') : null;
  }

  function patch(old, fresh) {
    if (old.nodeType === Node.TEXT_NODE || old.nodeType === Node.COMMENT_NODE) {
      if (old.nodeValue !== fresh.nodeValue) old.nodeValue = fresh.nodeValue;
      return;
    }
    for (const { name } of [...old.attributes]) if (!fresh.hasAttribute(name)) old.removeAttribute(name);
    for (const { name, value } of [...fresh.attributes]) if (old.getAttribute(name) !== value) old.setAttribute(name, value);
    patchChildren(old, fresh);
  }

  function patchChildren(parent, fresh) {
    const keyed = new Map();
    for (const child of parent.childNodes) {
      const key = keyOf(child);
      if (key !== null) keyed.set(key, child);
    }
    let cursor = parent.firstChild;
    for (const next of [...fresh.childNodes]) {
      const key = keyOf(next);
      let match = null;
      if (key !== null) match = keyed.get(key) ?? null;
      else if (cursor !== null && keyOf(cursor) === null && cursor.nodeType === next.nodeType && cursor.nodeName === next.nodeName) match = cursor;
      if (match === null) {
        parent.insertBefore(next, cursor);
        continue;
      }
      if (key !== null) keyed.delete(key);
      if (match === cursor) cursor = cursor.nextSibling;
      else parent.insertBefore(match, cursor);
      patch(match, next);
    }
    while (cursor !== null) {
      const after = cursor.nextSibling;
      parent.removeChild(cursor);
      cursor = after;
    }
  }
})();
