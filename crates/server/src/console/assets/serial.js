// The serial console: xterm.js (vendored) over a websocket to the guest's serial port. A
// read-only session sees the output and types nothing (the server drops its input too).
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const log = document.getElementById("boot-log");
  if (log) log.scrollTop = log.scrollHeight; // the latest lines of the boot log
  const el = document.getElementById("terminal");
  if (!el || typeof Terminal !== "function") return;
  const term = new Terminal({ cursorBlink: true, rows: 30, cols: 100, scrollback: 2000 });
  term.open(el);
  window.nubisTerm = term; // the browser tests read the screen from its buffer
  const writable = el.dataset.writable === "1";
  const status = document.getElementById("serial-status");
  const scheme = location.protocol === "https:" ? "wss://" : "ws://";
  const ws = new WebSocket(scheme + location.host + el.dataset.ws);
  ws.binaryType = "arraybuffer";
  ws.onopen = () => {
    status.textContent = writable ? "connected" : "connected (read-only)";
    // A fresh prompt: the login banner was printed before anyone watched.
    if (writable) ws.send("\r");
    term.focus();
  };
  ws.onmessage = (e) => term.write(typeof e.data === "string" ? e.data : new Uint8Array(e.data));
  ws.onclose = () => { status.textContent = "disconnected"; };
  if (writable) {
    const enc = new TextEncoder();
    term.onData((d) => { if (ws.readyState === WebSocket.OPEN) ws.send(enc.encode(d)); });
  }
});
