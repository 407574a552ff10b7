// Shared by every page: the CSRF token for the page's own requests. Pages add their own scripts.

window.villageConsole = {
  csrfToken() {
    return document.querySelector('meta[name="csrf-token"]')?.getAttribute('content') ?? '';
  },
};
