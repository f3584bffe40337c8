// octoroute dashboard: plain JavaScript, no build step, no third-party code.
//
// It talks only to the router that served it: GET /admin/state (everything, polled),
// GET /admin/events (server-sent events read with fetch() so the admin key travels in a header,
// never in a URL) and POST /route (the playground). Every value shown is put into the page as
// text (textContent), never as HTML, because names, errors and prompt previews come from clients
// and model servers.
"use strict";

(() => {
  const KEY_STORE = "octoroute.adminKey";
  const ROOT = new URL("../", document.baseURI); // the router's root, also behind a path prefix
  const LIVE_REFRESH_MS = 5000; // traffic and config while events keep fleet and decisions live
  const POLL_MS = 2000; // everything, when the event stream is not available
  const EVENTS_RETRY_MS = 5000;
  const TIERS = ["fast", "balanced", "deep"];
  const SERIES_COLORS = ["#2f9e6e", "#2f5fc4", "#7a3fc4", "#a15c00", "#c43f6e", "#3fa7c4", "#8a94a0"];
  const TIER_COLORS = { fast: "#2f9e6e", balanced: "#2f5fc4", deep: "#7a3fc4", embeddings: "#a15c00" };

  const model = {
    state: null, // the last GET /admin/state answer, fleet and decisions kept current by events
    fleetAt: 0, // performance.now() when the fleet shown arrived (ejection countdowns)
    windowSeconds: 300,
    live: false,
    stopped: false, // waiting for a key: no request is made
    generation: 0, // bumped by each start(): an older event loop sees it and ends
    refreshes: 0, // bumped by each refreshLoop(): an answer to an older one is dropped
    reachable: false, // the last GET /admin/state answered
    eventsAbort: null,
    timer: null,
    renderQueued: new Set(),
  };

  // ---- small DOM helpers -------------------------------------------------------------------

  const $ = (id) => document.getElementById(id);

  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name === "class") el.className = value;
      else if (name === "text") el.textContent = value;
      else if (name === "dataset") Object.assign(el.dataset, value);
      else if (name === "style") el.style.cssText = value; // CSSOM: allowed by the page's CSP
      else el.setAttribute(name, value === true ? "" : String(value));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      el.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return el;
  }

  function svg(tag, attrs, ...children) {
    const el = document.createElementNS("http://www.w3.org/2000/svg", tag);
    for (const [name, value] of Object.entries(attrs || {})) el.setAttribute(name, String(value));
    for (const child of children.flat()) if (child) el.append(child);
    return el;
  }

  function replace(container, ...children) {
    container.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined));
  }

  // ---- formatting ----------------------------------------------------------------------------

  const isNum = (v) => typeof v === "number" && Number.isFinite(v);
  function fmtNum(v, digits = 0) {
    if (!isNum(v)) return "–";
    return v.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: 0 });
  }
  function fmtMs(v) {
    if (!isNum(v)) return "–";
    if (v >= 10000) return `${fmtNum(v / 1000, 1)} s`;
    if (v >= 1000) return `${fmtNum(v / 1000, 2)} s`;
    if (v >= 100) return `${fmtNum(v, 0)} ms`;
    return `${fmtNum(v, 1)} ms`;
  }
  function fmtPct(v, digits = 1) {
    return isNum(v) ? `${fmtNum(v * 100, digits)} %` : "–";
  }
  function fmtRate(v) {
    if (!isNum(v)) return "–";
    return v >= 10 ? fmtNum(v, 1) : fmtNum(v, 3);
  }
  function fmtTime(iso) {
    const d = new Date(iso);
    if (Number.isNaN(d.getTime())) return "–";
    return d.toLocaleTimeString("en-GB", { hour12: false });
  }
  function fmtDuration(seconds) {
    if (!isNum(seconds)) return "–";
    const s = Math.max(0, Math.round(seconds));
    if (s < 60) return `${s} s`;
    if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
    if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
    return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
  }
  const text = (v) => (v === null || v === undefined || v === "" ? "–" : String(v));

  function tierBadge(tier) {
    const name = tier || "none";
    return h("span", { class: `badge tier tier-${TIER_COLORS[name] ? name : "none"}`, text: tier || "–" });
  }

  function healthBadge(instance) {
    const health = ["healthy", "unhealthy", "ejected", "unknown"].includes(instance.health)
      ? instance.health
      : "unknown";
    const badge = h("span", { class: `badge health-${health}`, dataset: { health }, text: health });
    if (health !== "ejected" || !instance.ejection) return badge;
    const until = model.fleetAt + Math.max(0, Number(instance.ejection.seconds_left) || 0) * 1000;
    return h(
      "span",
      { class: "ejection" },
      badge,
      h("span", { class: "sub" }, text(instance.ejection.cause), ", back in ",
        h("span", { class: "countdown", dataset: { until: String(until) }, text: countdown(until) })),
    );
  }

  function countdown(until) {
    return fmtDuration((until - performance.now()) / 1000);
  }

  // ---- talking to the router -----------------------------------------------------------------

  class KeyNeeded extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  function authHeaders(extra) {
    const headers = new Headers(extra || {});
    const key = sessionStorage.getItem(KEY_STORE);
    if (key) headers.set("Authorization", `Bearer ${key}`);
    return headers;
  }

  async function errorMessage(response) {
    try {
      const body = await response.json();
      if (body && body.error && body.error.message) return body.error.message;
    } catch (_) {
      // not JSON: fall through to the status line
    }
    return `${response.status} ${response.statusText}`;
  }

  async function call(path, init) {
    const response = await fetch(new URL(path, ROOT), {
      cache: "no-store",
      credentials: "same-origin",
      ...init,
      headers: authHeaders(init && init.headers),
    });
    if (response.status === 401 || response.status === 403) {
      throw new KeyNeeded(response.status, await errorMessage(response));
    }
    return response;
  }

  async function getJSON(path) {
    const response = await call(path);
    if (!response.ok) throw new Error(await errorMessage(response));
    return response.json();
  }

  function setConnection(kind, label) {
    const el = $("connection");
    el.className = `status status-${kind}`;
    el.textContent = label;
  }

  function needKey(error) {
    model.stopped = true;
    model.live = false;
    if (model.eventsAbort) model.eventsAbort.abort();
    clearTimeout(model.timer);
    const hadKey = Boolean(sessionStorage.getItem(KEY_STORE));
    $("key-prompt").hidden = false;
    $("key-reason").className = hadKey ? "error" : "";
    $("key-reason").textContent = hadKey
      ? error.status === 403
        ? `That key was accepted but may not see the dashboard: ${error.message}`
        : `That key was refused: ${error.message}`
      : "This router needs an admin key to show its dashboard.";
    $("forget-key").hidden = !hadKey;
    setConnection("key", error.status === 403 ? "admin key needed" : "key needed");
    $("key-input").focus();
  }

  function start() {
    model.stopped = false;
    $("key-prompt").hidden = true;
    $("forget-key").hidden = !sessionStorage.getItem(KEY_STORE);
    setConnection("unknown", "connecting…");
    model.generation += 1;
    refreshLoop();
    eventsLoop(model.generation);
  }

  async function refresh(turn) {
    const state = await getJSON(`admin/state?window=${model.windowSeconds}`);
    if (turn !== model.refreshes) return false; // a newer refresh (another window) was asked for
    const previous = model.state;
    model.state = state;
    model.fleetAt = performance.now();
    if (previous && model.live && Array.isArray(previous.decisions) && Array.isArray(state.decisions)) {
      // Decisions that arrived as events after the state was taken stay on the page.
      const known = new Set(state.decisions.map((d) => d.request_id));
      const newer = previous.decisions.filter((d) => !known.has(d.request_id) && d.time > (state.decisions[0] || {}).time);
      state.decisions = [...newer, ...state.decisions];
    }
    queueRender("header", "fleet", "traffic", "decisions", "config");
    return true;
  }

  // One chain of refreshes at a time: a new call (the window changed) supersedes the running one.
  async function refreshLoop() {
    clearTimeout(model.timer);
    const turn = ++model.refreshes;
    if (model.stopped) return;
    try {
      if (!(await refresh(turn))) return;
      model.reachable = true;
      if (!model.live) setConnection("polling", "polling every 2 s");
    } catch (error) {
      if (turn !== model.refreshes) return;
      if (error instanceof KeyNeeded) return needKey(error);
      model.reachable = false;
      setConnection("down", "router unreachable, retrying");
    }
    if (!model.stopped) model.timer = setTimeout(refreshLoop, model.live ? LIVE_REFRESH_MS : POLL_MS);
  }

  // Server-sent events over fetch(): EventSource cannot send the admin key as a header.
  async function eventsLoop(generation) {
    while (!model.stopped && generation === model.generation) {
      const abort = new AbortController();
      model.eventsAbort = abort;
      try {
        const response = await call("admin/events", { headers: { Accept: "text/event-stream" }, signal: abort.signal });
        if (!response.ok || !response.body) throw new Error(await errorMessage(response));
        model.live = true;
        setConnection("live", "live");
        await readEvents(response.body, abort.signal);
      } catch (error) {
        if (abort.signal.aborted) return; // stopped on purpose (a key is needed, or a new one)
        if (error instanceof KeyNeeded) return needKey(error);
      }
      if (generation !== model.generation) return;
      model.live = false;
      if (!model.stopped && model.reachable) setConnection("polling", "polling every 2 s");
      await new Promise((resolve) => setTimeout(resolve, EVENTS_RETRY_MS));
    }
  }

  async function readEvents(body, signal) {
    const reader = body.pipeThrough(new TextDecoderStream()).getReader();
    signal.addEventListener("abort", () => reader.cancel().catch(() => {}), { once: true });
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer = (buffer + value).replace(/\r\n/g, "\n");
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        dispatch(buffer.slice(0, end));
        buffer = buffer.slice(end + 2);
      }
    }
  }

  function dispatch(block) {
    let name = "message";
    const data = [];
    for (const line of block.split("\n")) {
      if (line === "" || line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? "" : line.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (field === "event") name = value;
      else if (field === "data") data.push(value);
    }
    if (!data.length || !model.state) return;
    let payload;
    try {
      payload = JSON.parse(data.join("\n"));
    } catch (_) {
      return;
    }
    if (name === "fleet") {
      model.state.fleet = payload;
      model.fleetAt = performance.now();
      queueRender("fleet");
    } else if (name === "decision") {
      const list = Array.isArray(model.state.decisions) ? model.state.decisions : [];
      const limit = Math.max(100, list.length);
      model.state.decisions = [payload, ...list].slice(0, limit);
      queueRender("decisions");
    }
  }

  // ---- rendering -----------------------------------------------------------------------------

  function queueRender(...parts) {
    const first = model.renderQueued.size === 0;
    for (const part of parts) model.renderQueued.add(part);
    if (!first) return;
    requestAnimationFrame(() => {
      const parts = [...model.renderQueued];
      model.renderQueued.clear();
      if (!model.state) return;
      for (const part of parts) RENDER[part](model.state);
    });
  }

  function renderHeader(state) {
    const router = state.router || {};
    $("router-version").textContent = router.version ? `v${router.version}` : "";
    const facts = [
      ["strategy", router.strategy],
      ["workers", router.workers],
      ["pid", router.pid],
      ["up", fmtDuration(state.uptime_seconds)],
      ["as of", fmtTime(state.generated_at)],
    ];
    if (router.note) facts.push(["note", router.note]);
    replace($("router-facts"), facts.map(([k, v]) => h("div", {}, h("dt", { text: k }), h("dd", { text: text(v) }))));
  }

  const NOWRAP = new Set(["In flight / slots", "p50 / p95", "Errors", "Context"]);

  function instanceRow(instance) {
    const label = (name, ...content) => h("td", { dataset: { label: name }, class: NOWRAP.has(name) ? "nowrap" : null }, ...content);
    const slots = isNum(instance.slots) ? instance.slots : null;
    const used = isNum(instance.in_flight) ? instance.in_flight : 0;
    const latency = instance.latency_ms || null;
    const health = instance.health || "unknown";
    const rowClass = health === "unhealthy" ? "down" : health === "ejected" ? "ejected" : "";
    return h(
      "tr",
      { class: rowClass, dataset: { instance: instance.id || instance.name || "", health } },
      label("Instance", h("div", {}, h("strong", { text: text(instance.name) }),
        h("span", { class: "sub mono", text: [instance.id, instance.kind, instance.url].filter(Boolean).join(" · ") }))),
      label("Health", h("span", {}, healthBadge(instance),
        isNum(instance.seconds_since_check) ? h("span", { class: "sub", text: `checked ${fmtDuration(instance.seconds_since_check)} ago` }) : null)),
      label("In flight / slots", h("span", { class: "num" }, `${fmtNum(used)} / ${slots === null ? "?" : fmtNum(slots)}`,
        slots ? h("span", { class: "meter", "aria-hidden": "true" }, h("span", { style: `width:${Math.min(100, (used / slots) * 100)}%` })) : null)),
      label("Warm", instance.warm === true ? "warm" : instance.warm === false ? "cold" : "–"),
      label("Context", isNum(instance.context_window) ? fmtNum(instance.context_window) : "–"),
      label("p50 / p95", latency ? `${fmtMs(latency.p50)} / ${fmtMs(latency.p95)}` : "–"),
      label("Errors", `${fmtPct(instance.error_rate)} of ${fmtNum(instance.requests)}`),
      label("Priority · weight", `${text(instance.priority)} · ${text(instance.weight)}`),
      label("Last error", instance.last_error ? h("span", { class: "last-error", text: instance.last_error }) : "–"),
    );
  }

  function instanceTable(caption, instances) {
    const heads = ["Instance", "Health", "In flight / slots", "Warm", "Context", "p50 / p95", "Errors", "Priority · weight", "Last error"];
    return h("div", { class: "table-wrap" }, h("table", { class: "stack fleet" },
      h("caption", { class: "sr-only", text: caption }),
      h("thead", {}, h("tr", {}, heads.map((name) => h("th", { scope: "col", text: name })))),
      h("tbody", {}, (instances || []).map(instanceRow))));
  }

  function renderFleet(state) {
    const fleet = state.fleet || {};
    const tiers = Array.isArray(fleet.tiers) ? fleet.tiers : [];
    const all = tiers.flatMap((t) => t.instances || []).concat(fleet.embeddings || []);
    const healthy = all.filter((i) => i.health === "healthy").length;
    $("fleet-summary").textContent = `${healthy} of ${all.length} instances healthy`;
    document.title = `${healthy}/${all.length} healthy · octoroute`; // readable from a background tab
    const blocks = tiers.map((tier) => {
      const queue = `queue ${fmtNum(tier.queue_length)}${isNum(tier.max_queue) ? ` / ${fmtNum(tier.max_queue)}` : ""}`;
      return h("div", { class: "tier-block", dataset: { tier: tier.tier } },
        h("div", { class: "tier-head" }, h("h3", {}, tierBadge(tier.tier)),
          h("span", { class: "muted", text: `${(tier.instances || []).length} instance(s) · ${queue}` })),
        instanceTable(`${tier.tier} tier`, tier.instances));
    });
    if (Array.isArray(fleet.embeddings) && fleet.embeddings.length) {
      blocks.push(h("div", { class: "tier-block", dataset: { tier: "embeddings" } },
        h("div", { class: "tier-head" }, h("h3", {}, tierBadge("embeddings"))),
        instanceTable("embedding models", fleet.embeddings)));
    }
    replace($("fleet-body"), blocks.length ? h("div", { class: "tiers" }, blocks) : h("p", { class: "empty", text: "No instances configured." }));
  }

  function stat(label, value, hint) {
    return h("div", { class: "stat", title: hint || null }, h("span", { class: "label", text: label }), h("span", { class: "value", text: value }));
  }

  // Stacked bars over the window's buckets: one series per name, one bar per bucket.
  function stackedChart(title, buckets, names, pick, colors) {
    const narrow = window.innerWidth < 720; // fewer units on a phone, so the labels stay legible
    const width = narrow ? 340 : 600;
    const height = narrow ? 120 : 150;
    const pad = { left: 30, right: 6, top: 8, bottom: 18 };
    const totals = buckets.map((b) => names.reduce((sum, n) => sum + (Number(pick(b, n)) || 0), 0));
    const max = Math.max(1, ...totals);
    const slot = (width - pad.left - pad.right) / Math.max(1, buckets.length);
    const scale = (height - pad.top - pad.bottom) / max;
    const bars = [];
    buckets.forEach((bucket, i) => {
      let y = height - pad.bottom;
      names.forEach((name, n) => {
        const value = Number(pick(bucket, name)) || 0;
        if (!value) return;
        const barHeight = value * scale;
        y -= barHeight;
        bars.push(svg("rect", { x: (pad.left + i * slot + 0.5).toFixed(1), y: y.toFixed(1), width: Math.max(1, slot - 1).toFixed(1),
          height: barHeight.toFixed(1), fill: colors[n] }, svg("title", {}, document.createTextNode(`${fmtTime(bucket.start)} ${name}: ${value}`))));
      });
    });
    const first = buckets.length ? fmtTime(buckets[0].start) : "";
    const last = buckets.length ? fmtTime(buckets[buckets.length - 1].start) : "";
    const label = (x, y, value, anchor) => svg("text", { x, y, "text-anchor": anchor || "start" }, document.createTextNode(value));
    const total = totals.reduce((a, b) => a + b, 0);
    const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": `${title}: ${total} in the window, at most ${max} per bucket` },
      svg("line", { class: "axis", x1: pad.left, x2: width - pad.right, y1: height - pad.bottom, y2: height - pad.bottom }),
      label(pad.left - 4, pad.top + 8, String(max), "end"),
      label(pad.left - 4, height - pad.bottom, "0", "end"),
      label(pad.left, height - 4, first),
      label(width - pad.right, height - 4, last, "end"),
      bars);
    return h("figure", { class: "chart" }, h("h3", { text: title }), chart,
      h("div", { class: "legend" }, names.map((n, i) => h("span", { style: `--swatch:${colors[i]}`, text: n }))));
  }

  function shareBars(title, counts) {
    const entries = Object.entries(counts || {}).filter(([, v]) => isNum(v) && v > 0).sort((a, b) => b[1] - a[1]);
    const total = entries.reduce((sum, [, v]) => sum + v, 0);
    return h("div", { class: "chart" }, h("h3", { text: title }),
      entries.length
        ? h("div", { class: "bars", role: "list" }, entries.map(([name, value]) => h("div", { class: "bar-row", role: "listitem" },
          h("span", { class: "label", title: name, text: name }),
          h("span", { class: "bar", "aria-hidden": "true" }, h("span", { style: `width:${((value / total) * 100).toFixed(1)}%` })),
          h("span", { class: "value", text: `${fmtPct(value / total, 0)} (${fmtNum(value)})` }))))
        : h("p", { class: "empty", text: "Nothing in this window." }));
  }

  function renderTraffic(state) {
    const traffic = state.traffic || {};
    const totals = traffic.totals || {};
    const seconds = traffic.window_seconds || model.windowSeconds;
    const buckets = Array.isArray(traffic.buckets) ? traffic.buckets : [];
    const ttft = totals.ttft_ms;
    const stats = h("div", { class: "stats" },
      stat("requests", fmtNum(totals.requests)),
      stat("requests / s", fmtRate(totals.rps)),
      stat("errors", fmtNum(totals.errors)),
      stat("retries", fmtNum(totals.retries), "another attempt after a failed one"),
      stat("failovers", fmtNum(totals.failovers), "answered by another instance than the first tried"),
      stat("fallbacks", fmtNum(totals.fallbacks), "routing fell back to the rules"),
      stat("TTFT p50", ttft ? fmtMs(ttft.p50) : "–", "time to first token"),
      stat("TTFT p95", ttft ? fmtMs(ttft.p95) : "–", "time to first token"));

    const tierNames = [...TIERS, "embeddings"].filter((t) => buckets.some((b) => b.requests && b.requests[t]) || (totals.by_tier && totals.by_tier[t]));
    const strategyNames = [...new Set(buckets.flatMap((b) => Object.keys(b.by_strategy || {})).concat(Object.keys(totals.by_strategy || {})))];
    const outcomeNames = ["errors", "retries", "failovers", "fallbacks"];
    const charts = h("div", { class: "charts" },
      stackedChart("Requests by tier", buckets, tierNames, (b, n) => (b.requests || {})[n], tierNames.map((t) => TIER_COLORS[t])),
      stackedChart("Requests by strategy", buckets, strategyNames, (b, n) => (b.by_strategy || {})[n], strategyNames.map((_, i) => SERIES_COLORS[i % SERIES_COLORS.length])),
      stackedChart("Errors, retries, failovers, fallbacks", buckets, outcomeNames, (b, n) => b[n], ["#b42318", "#a15c00", "#2f5fc4", "#7a3fc4"]),
      shareBars("Decisions by reason", totals.by_reason));

    const rateRows = (counts) => Object.entries(counts || {}).map(([name, count]) =>
      h("tr", {}, h("td", { dataset: { label: "Name" }, text: name }), h("td", { class: "num", dataset: { label: "Requests" }, text: fmtNum(count) }),
        h("td", { class: "num", dataset: { label: "Requests / s" }, text: fmtRate(count / seconds) })));
    const rateTable = (title, counts) => h("div", { class: "chart" }, h("h3", { text: title }),
      h("table", { class: "stack" }, h("thead", {}, h("tr", {}, h("th", { scope: "col", text: "Name" }), h("th", { scope: "col", class: "num", text: "Requests" }), h("th", { scope: "col", class: "num", text: "Requests / s" }))),
        h("tbody", {}, rateRows(counts))));
    const tokens = totals.tokens || {};
    const tokenTable = h("div", { class: "chart" }, h("h3", { text: "Tokens by tier" }),
      h("table", { class: "stack" }, h("thead", {}, h("tr", {}, ["Tier", "Prompt", "Completion", "Total"].map((n, i) => h("th", { scope: "col", class: i ? "num" : null, text: n })))),
        h("tbody", {}, Object.entries(tokens).map(([tier, t]) => h("tr", {},
          h("td", { dataset: { label: "Tier" } }, tierBadge(tier)),
          h("td", { class: "num", dataset: { label: "Prompt" }, text: fmtNum(t.prompt) }),
          h("td", { class: "num", dataset: { label: "Completion" }, text: fmtNum(t.completion) }),
          h("td", { class: "num", dataset: { label: "Total" }, text: fmtNum((t.prompt || 0) + (t.completion || 0)) }))))));
    const tables = h("div", { class: "charts" }, rateTable("Rate by tier", totals.by_tier), rateTable("Rate by strategy", totals.by_strategy), tokenTable);
    const note = h("p", { class: "muted small", text: `Over the last ${fmtDuration(seconds)}, in ${fmtDuration(traffic.bucket_seconds)} buckets.` });
    replace($("traffic-body"), stats, charts, tables, note);
  }

  const DECISION_COLUMNS = [
    ["Time", (d) => fmtTime(d.time), "nowrap"],
    ["Tier", (d) => tierBadge(d.tier)],
    ["Strategy", (d) => text(d.strategy)],
    ["Reason", (d) => h("span", { class: "mono", text: text(d.reason) })],
    ["Confidence", (d) => (isNum(d.confidence) ? fmtPct(d.confidence, 0) : "–"), "num nowrap"],
    ["Instance", (d) => h("span", {}, text(d.instance || d.endpoint), d.instance && d.endpoint && d.instance !== d.endpoint ? h("span", { class: "sub", text: d.endpoint }) : null)],
    ["Status", (d) => h("span", { title: d.error || null }, h("span", { class: d.status >= 400 ? "status-code-bad" : "status-code-ok", text: text(d.status) }),
      d.error ? h("span", { class: "sub", text: String(d.error) }) : null), "num"],
    ["Latency", (d) => h("span", {}, fmtMs(d.duration_ms), isNum(d.ttfb_ms) ? h("span", { class: "sub", text: `first byte ${fmtMs(d.ttfb_ms)}` }) : null), "num nowrap"],
    ["Attempts", (d) => h("span", {}, fmtNum(d.attempts), d.stream ? h("span", { class: "sub", text: "stream" }) : null), "num"],
    ["Tokens", (d) => (d.tokens ? h("span", { title: "prompt + completion" }, `${fmtNum(d.tokens.prompt)} + ${fmtNum(d.tokens.completion)}`) : "–"), "num nowrap"],
    ["Key", (d) => text(d.key)],
    ["Request", (d) => h("span", { class: "ids" }, h("span", { class: "mono small", title: d.request_id || null, text: shortId(d.request_id) }),
      h("span", { class: "sub", text: `${text(d.route)} · model ${text(d.model)}` }))],
  ];

  // A long id (a UUID) shortened for the table; the whole id is its tooltip and the filter's.
  function shortId(id) {
    const value = text(id);
    return value.length > 18 ? `${value.slice(0, 13)}…` : value;
  }

  function decisionMatches(decision, needle) {
    if (!needle) return true;
    return Object.values(decision).some((v) => v !== null && v !== undefined && String(v).toLowerCase().includes(needle));
  }

  function renderDecisions(state) {
    const decisions = Array.isArray(state.decisions) ? state.decisions : [];
    const needle = $("decision-filter").value.trim().toLowerCase();
    const shown = decisions.filter((d) => decisionMatches(d, needle));
    const previews = decisions.some((d) => "prompt_preview" in d);
    const columns = previews ? [...DECISION_COLUMNS, ["Prompt preview", (d) => h("span", { class: "preview", text: text(d.prompt_preview) })]] : DECISION_COLUMNS;
    $("decisions-note").textContent = `${decisions.length} most recent, newest first${needle ? `; ${shown.length} match the filter` : ""}.`
      + (previews ? " Prompt previews are on ([ui] show_prompts = true)." : "");
    if (!shown.length) {
      replace($("decisions-body"), h("p", { class: "empty", text: decisions.length ? "No decision matches the filter." : "No request has ended yet." }));
      return;
    }
    const table = h("table", { class: "stack", id: "decisions-table" },
      h("thead", {}, h("tr", {}, columns.map(([name, , cls]) => h("th", { scope: "col", class: cls || null, text: name })))),
      h("tbody", {}, shown.map((d) => h("tr", { dataset: { requestId: d.request_id || "" } },
        columns.map(([name, cell, cls]) => {
          const value = cell(d);
          return h("td", { class: cls || null, dataset: { label: name } }, value);
        })))));
    replace($("decisions-body"), h("div", { class: "table-wrap" }, table));
  }

  function renderConfig(state) {
    const config = state.config || {};
    $("config-source").textContent = config.source ? `from ${config.source}` : "";
    const reload = config.last_reload;
    let reloadPart;
    if (!reload) {
      reloadPart = h("p", { id: "last-reload", class: "muted", text: "Not reloaded since it started." });
    } else {
      const problems = Array.isArray(reload.problems) ? reload.problems : [];
      const restart = Array.isArray(reload.restart_needed) ? reload.restart_needed : [];
      const changed = Array.isArray(reload.changed) ? reload.changed : [];
      const chips = (list) => list.map((k) => h("span", { class: "chip", text: typeof k === "string" ? k : JSON.stringify(k) }));
      reloadPart = h("div", { id: "last-reload" },
        h("p", {}, "Last reload at ", fmtTime(reload.at), reload.trigger ? ` (${reload.trigger})` : "", ": ",
          h("span", { dataset: { ok: String(Boolean(reload.ok)) }, class: reload.ok ? "status-code-ok" : "status-code-bad",
            text: reload.ok ? "applied" : "refused, the previous configuration still runs" })),
        problems.length ? h("ul", { class: "error" }, problems.map((p) => h("li", { text: typeof p === "string" ? p : JSON.stringify(p) }))) : null,
        changed.length ? h("p", {}, "Changed: ", chips(changed)) : reload.ok ? h("p", { class: "muted", text: "Nothing changed." }) : null,
        restart.length ? h("p", {}, "Needs a restart to apply: ", chips(restart)) : null);
    }
    const effective = h("details", { open: true }, h("summary", { text: "Effective configuration (credentials redacted)" }),
      h("pre", { id: "config-json", text: JSON.stringify(config.effective ?? {}, null, 2) }));
    replace($("config-body"), reloadPart, effective);
  }

  const RENDER = { header: renderHeader, fleet: renderFleet, traffic: renderTraffic, decisions: renderDecisions, config: renderConfig };

  // ---- playground ------------------------------------------------------------------------------

  // What the user typed as a chat body: a JSON body with messages, a JSON messages array, or text.
  function playgroundBody(input) {
    const trimmed = input.trim();
    if (trimmed.startsWith("{") || trimmed.startsWith("[")) {
      let parsed;
      try {
        parsed = JSON.parse(trimmed);
      } catch (error) {
        throw new Error(`That looks like JSON but does not parse (${error.message}). Fix it, or type a plain prompt.`);
      }
      if (Array.isArray(parsed)) return { model: "auto", messages: parsed };
      if (parsed && typeof parsed === "object" && ("messages" in parsed || "message" in parsed)) return { model: "auto", ...parsed };
      throw new Error('A JSON conversation is a "messages" array, or an object with "messages".');
    }
    return { model: "auto", messages: [{ role: "user", content: input }] };
  }

  async function routeDecision(body, importance, strategy) {
    const query = strategy ? `?strategy=${encodeURIComponent(strategy)}` : "";
    const headers = { "Content-Type": "application/json" };
    if (importance) headers["x-octoroute-importance"] = importance;
    const response = await call(`route${query}`, { method: "POST", headers, body: JSON.stringify(body) });
    if (!response.ok) throw new Error(await errorMessage(response));
    return response.json();
  }

  function probabilityBars(probabilities) {
    const entries = Object.entries(probabilities).filter(([, v]) => isNum(v));
    return h("div", { class: "bars" }, entries.map(([name, value]) => h("div", { class: "bar-row" },
      h("span", { class: "label", text: name }),
      h("span", { class: "bar", "aria-hidden": "true" }, h("span", { style: `width:${(Math.max(0, Math.min(1, value)) * 100).toFixed(1)}%;background:${TIER_COLORS[name] || "var(--accent)"}` })),
      h("span", { class: "value", text: fmtPct(value, 1) }))));
  }

  function explainValue(value) {
    if (Array.isArray(value)) {
      return value.length ? value.map((v) => h("span", { class: "chip", text: typeof v === "object" ? JSON.stringify(v) : String(v) })) : "none";
    }
    if (value && typeof value === "object") {
      const values = Object.values(value);
      if (values.length && values.every(isNum) && values.every((v) => v >= 0 && v <= 1)) return probabilityBars(value);
      return h("dl", { class: "kv" }, Object.entries(value).map(([k, v]) => [h("dt", { text: k }), h("dd", {}, explainValue(v))]));
    }
    if (typeof value === "number") return fmtNum(value, 4);
    return text(value);
  }

  // The explanation POST /route adds: who decided and why, in words first, then the numbers.
  const EXPLAINED = new Set(["summary", "strategy", "decided_by", "rule", "routed_tier", "probabilities", "learned_tier",
    "learned_confidence", "confidence", "confidence_threshold", "asked_router_model", "signals"]);

  function renderExplanation(explanation) {
    const e = explanation;
    const rows = [];
    const row = (label, value) => rows.push(h("dt", { text: label }), h("dd", {}, value));
    if (e.strategy) row("strategy asked", text(e.strategy));
    if (e.decided_by) row("decided by", h("strong", { dataset: { field: "decided_by" }, text: e.decided_by }));
    if (e.rule) row("rule", h("code", { dataset: { field: "rule" }, text: e.rule }));
    if (isNum(e.confidence) || isNum(e.confidence_threshold)) {
      row("confidence", `${fmtPct(e.confidence, 1)}${isNum(e.confidence_threshold) ? ` (threshold ${fmtPct(e.confidence_threshold, 0)})` : ""}`);
    }
    if (e.learned_tier) row("learned model", `${e.learned_tier}${isNum(e.learned_confidence) ? ` at ${fmtPct(e.learned_confidence, 1)}` : ""}`);
    if (typeof e.asked_router_model === "boolean") row("router model asked", e.asked_router_model ? "yes" : "no");
    for (const [key, value] of Object.entries(e)) {
      if (!EXPLAINED.has(key) && value !== null && value !== undefined) row(key.replace(/_/g, " "), explainValue(value));
    }
    const probabilities = e.probabilities && typeof e.probabilities === "object"
      ? h("div", { class: "probabilities" }, h("h4", { text: "The learned model's probability per tier" }), probabilityBars(e.probabilities))
      : null;
    return h("div", { class: "explanation", id: "pg-explanation" }, h("h3", { text: "Explanation" }),
      e.summary ? h("p", { class: "summary", dataset: { field: "summary" }, text: e.summary }) : null,
      h("dl", { class: "kv" }, rows), probabilities);
  }

  function renderDecision(decision) {
    const field = (name, value, label) => [h("dt", { text: label || name }), h("dd", { dataset: { field: name } }, value)];
    const verdict = h("div", { class: "verdict" },
      h("span", { dataset: { field: "tier" }, "aria-label": `tier ${decision.tier}` }, tierBadge(decision.tier)),
      h("span", {}, "decided by ", h("strong", { dataset: { field: "strategy" }, text: text(decision.strategy) })),
      h("span", {}, "reason ", h("code", { dataset: { field: "reason" }, text: text(decision.reason) })),
      isNum(decision.confidence) ? h("span", {}, "confidence ", h("strong", { dataset: { field: "confidence" }, text: fmtPct(decision.confidence, 1) })) : null);
    const facts = h("dl", { class: "kv" },
      field("signals", explainValue(decision.signals || [])),
      field("task_type", text(decision.task_type), "task type"),
      field("importance", text(decision.importance)),
      field("token_estimate", fmtNum(decision.token_estimate), "token estimate"),
      field("fallback", decision.fallback ? `yes (${decision.fallback === true ? "the strategy failed; the rules decided" : decision.fallback})` : "no"),
      decision.alias ? field("alias", text(decision.alias)) : null,
      field("routing_ms", fmtMs(decision.routing_ms), "routing took"));
    const explanation = decision.explanation && typeof decision.explanation === "object"
      ? renderExplanation(decision.explanation)
      : null;
    return h("div", { class: "result", id: "pg-decision" }, verdict,
      h("div", { class: "result-grid" }, h("div", {}, h("h3", { text: "What the router read" }), facts), explanation),
      h("details", {}, h("summary", { text: "The answer of POST /route" }), h("pre", { id: "pg-raw", text: JSON.stringify(decision, null, 2) })));
  }

  async function runPlayground(compare) {
    const result = $("pg-result");
    let body;
    try {
      body = playgroundBody($("pg-prompt").value);
    } catch (error) {
      replace(result, h("p", { class: "error", role: "alert", text: error.message }));
      return;
    }
    const importance = $("pg-importance").value;
    const buttons = [$("pg-submit"), $("pg-compare")];
    buttons.forEach((b) => (b.disabled = true));
    replace(result, h("p", { class: "muted", text: "Routing…" }));
    try {
      if (!compare) {
        replace(result, renderDecision(await routeDecision(body, importance, $("pg-strategy").value)));
      } else {
        const strategies = ["rule", "llm", "hybrid", "learned"];
        const answers = await Promise.all(strategies.map((s) => routeDecision(body, importance, s).catch((e) => e)));
        replace(result, h("div", { class: "result" }, h("h3", { text: "The same request under each strategy" }),
          h("div", { class: "compare" }, strategies.map((s, i) => {
            const a = answers[i];
            if (a instanceof KeyNeeded) throw a;
            return h("div", { class: "stat", dataset: { strategy: s } }, h("span", { class: "label", text: s }),
              a instanceof Error
                ? h("span", { class: "error", text: a.message })
                : h("span", { class: "value", dataset: { tier: a.tier } }, tierBadge(a.tier), " ",
                  h("span", { class: "sub", text: `${text(a.reason)}${isNum(a.confidence) ? ` · ${fmtPct(a.confidence, 0)}` : ""}` }),
                  a.explanation && a.explanation.summary ? h("span", { class: "sub", text: a.explanation.summary }) : null));
          }))));
      }
    } catch (error) {
      if (error instanceof KeyNeeded) needKey(error);
      replace(result, h("p", { class: "error", role: "alert", text: `The router did not route it: ${error.message}` }));
    } finally {
      buttons.forEach((b) => (b.disabled = false));
    }
  }

  // ---- wiring --------------------------------------------------------------------------------

  function init() {
    $("key-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const key = $("key-input").value.trim();
      if (!key) return;
      sessionStorage.setItem(KEY_STORE, key);
      $("key-input").value = "";
      start();
    });
    $("forget-key").addEventListener("click", () => {
      sessionStorage.removeItem(KEY_STORE);
      needKey(new KeyNeeded(401, "forgotten"));
    });
    $("window-select").addEventListener("change", (event) => {
      model.windowSeconds = Number(event.target.value) || 300;
      refreshLoop();
    });
    $("decision-filter").addEventListener("input", () => queueRender("decisions"));
    $("playground-form").addEventListener("submit", (event) => {
      event.preventDefault();
      runPlayground(false);
    });
    $("pg-compare").addEventListener("click", () => {
      if ($("playground-form").reportValidity()) runPlayground(true);
    });
    setInterval(() => {
      for (const el of document.querySelectorAll(".countdown")) el.textContent = countdown(Number(el.dataset.until));
    }, 1000);
    start();
  }

  init();
})();
