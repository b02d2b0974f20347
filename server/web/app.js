// segura web UI: the small behaviours the server-rendered pages need. No inline scripts
// anywhere (the Content-Security-Policy forbids them); every page works without this file,
// which only adds tabs, confirmations and the player.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  // Rule form tabs (Main / Application). Without script both fieldsets show.
  const tabs = document.querySelectorAll(".tabs [data-tab]");
  if (tabs.length) {
    const show = (name) => {
      for (const t of tabs) t.setAttribute("aria-selected", String(t.dataset.tab === name));
      for (const f of document.querySelectorAll("fieldset.tab")) f.hidden = f.dataset.tab !== name;
    };
    for (const t of tabs) t.addEventListener("click", () => show(t.dataset.tab));
    // Open the first tab that has an error in it.
    const bad = document.querySelector("fieldset.tab .field-error");
    show(bad ? bad.closest("fieldset.tab").dataset.tab : "main");
  }

  // The rule form shows the picker that goes with the scope.
  const scope = document.querySelector("form.rule select[name=scope]");
  if (scope) {
    const sync = () => {
      for (const l of document.querySelectorAll("label.scope-for")) l.hidden = l.dataset.scope !== scope.value;
    };
    scope.addEventListener("change", sync);
    sync();
  }

  // Buttons that ask first.
  for (const b of document.querySelectorAll("button[data-confirm]")) {
    b.addEventListener("click", (ev) => {
      if (!window.confirm(b.dataset.confirm)) ev.preventDefault();
    });
  }

  // Session Video: asciinema-player, speed choice, commands that seek.
  const el = document.getElementById("player");
  if (el && window.AsciinemaPlayer) {
    let speed = 1;
    const make = (startAt) => {
      el.replaceChildren();
      const p = window.AsciinemaPlayer.create(el.dataset.cast, el, {
        cols: Number(el.dataset.cols) || 80,
        rows: Number(el.dataset.rows) || 24,
        startAt: startAt,
        // Paused, the player shows the frame at this moment.
        poster: "npt:" + startAt,
        speed: speed,
        preload: true,
        fit: "width",
        idleTimeLimit: 5,
      });
      window.seguraPlayer = p;
      return p;
    };
    let player = make(Number(el.dataset.start) || 0);
    const speedSel = document.getElementById("speed");
    if (speedSel) {
      speedSel.addEventListener("change", async () => {
        const t = await player.getCurrentTime();
        speed = Number(speedSel.value) || 1;
        player.dispose();
        player = make(t);
      });
    }
    for (const a of document.querySelectorAll("a.seek[data-t]")) {
      a.addEventListener("click", async (ev) => {
        ev.preventDefault();
        const t = Number(a.dataset.t);
        await player.seek(t);
        el.dataset.seeked = String(t);
        history.replaceState(null, "", "?t=" + a.dataset.t);
      });
    }
  }
});
