// The installer page: refreshes the device rows from /api/diagnostics and runs the test buttons without leaving the page.
(() => {
  const result = document.getElementById('installer-result');

  function say(outcome, text) {
    if (result === null) return;
    result.dataset.outcome = outcome;
    result.textContent = text;
  }

  async function refresh() {
    try {
      const response = await fetch('/api/diagnostics', { headers: { accept: 'application/json' }, credentials: 'same-origin' });
      if (!response.ok) return;
      const { devices } = await response.json();
      for (const device of devices) {
        const row = document.querySelector(`[data-device="${CSS.escape(device.id)}"]`);
        if (row === null) continue;
        row.dataset.online = String(device.online);
        for (const field of ['online', 'errors', 'raw', 'at']) {
          const cell = row.querySelector(`[data-field="${field}"]`);
          if (cell !== null) cell.textContent = device.shown[field];
        }
        row.querySelector('[data-field="at"]')?.setAttribute('datetime', device.shown.at);
      }
    } catch {
      // The next refresh tries again; the rows keep what they showed.
    }
  }

  async function post(form, button) {
    const body = {};
    for (const [name, value] of new FormData(form)) if (name !== '_csrf') body[name] = String(value);
    button.disabled = true;
    button.setAttribute('aria-busy', 'true');
    try {
      const response = await fetch(form.action, {
        method: 'POST',
        credentials: 'same-origin',
        headers: { 'content-type': 'application/json', accept: 'application/json', 'x-csrf-token': window.villageConsole.csrfToken() },
        body: JSON.stringify(body),
      });
      const answer = await response.json().catch(() => ({}));
      say(response.ok && answer.ok === true ? 'ok' : 'refused', answer.message ?? answer.error ?? `HTTP ${response.status}`);
    } catch (error) {
      say('refused', String(error));
    } finally {
      button.disabled = false;
      button.removeAttribute('aria-busy');
    }
  }

  for (const form of document.querySelectorAll('form.installer-form')) {
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      const button = form.querySelector('button');
      if (button !== null && !button.disabled) void post(form, button);
    });
  }

  if (document.getElementById('installer-devices') !== null) setInterval(refresh, 5000);
})();
