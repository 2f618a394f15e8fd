// Live updates: an element with data-live="<stream URL>" is replaced by each fragment the
// server sends (server-sent events). Without JavaScript the pages work, just not live.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  for (const el of document.querySelectorAll("[data-live]")) {
    const es = new EventSource(el.dataset.live);
    es.addEventListener("fragment", (e) => {
      // The fragment is the server's own escaped HTML (maud), same origin.
      el.innerHTML = e.data;
      el.dataset.updated = String(Date.now());
    });
    es.onerror = () => {
      // The session ended (401) or the server went away: stop, the next page load signs in.
      if (es.readyState === EventSource.CLOSED) el.dataset.live = "";
    };
  }
});
