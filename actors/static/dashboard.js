"use strict";
(function () {
  const POLL_MS = 1000;
  const HISTORY_POINTS = 300;       // the page keeps at most this many latency points per stage
  const MAX_STAGES_SHOWN = 6;
  const COLOURS = ["--c1", "--c2", "--c3", "--c4", "--c5", "--c6"].map(
    (name) => getComputedStyle(document.documentElement).getPropertyValue(name).trim());

  // ---- tiny DOM helpers: text only, never HTML from the server ------------------------------
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null) continue;
      if (key === "class") node.className = value;
      else if (key === "style") node.style.cssText = value;  // CSSOM: allowed by the CSP
      else node.setAttribute(key, value);
    }
    for (const child of children.flat()) {
      if (child === undefined || child === null) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }
  function svg(tag, attrs) {
    const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
    for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, value);
    return node;
  }
  function put(id, ...children) { document.getElementById(id).replaceChildren(...children.flat()); }
  function text(id, value, cls) {
    const node = document.getElementById(id);
    node.textContent = value;
    if (cls !== undefined) node.className = cls;
  }

  // ---- formatting -----------------------------------------------------------------------------
  function num(value, digits) {
    if (value === null || value === undefined || Number.isNaN(value)) return "–";
    if (typeof value !== "number") return String(value);
    if (Math.abs(value) >= 1e9) return (value / 1e9).toFixed(2) + "G";
    if (Math.abs(value) >= 1e6) return (value / 1e6).toFixed(2) + "M";
    if (Math.abs(value) >= 1e4) return (value / 1e3).toFixed(1) + "k";
    return Number.isInteger(value) ? String(value) : value.toFixed(digits === undefined ? 2 : digits);
  }
  function seconds(value) {
    if (value === null || value === undefined) return "–";
    if (value < 0.001) return (value * 1e6).toFixed(0) + "µs";
    if (value < 1) return (value * 1000).toFixed(value < 0.01 ? 2 : 1) + "ms";
    if (value < 120) return value.toFixed(1) + "s";
    if (value < 7200) return (value / 60).toFixed(1) + "m";
    if (value < 172800) return (value / 3600).toFixed(1) + "h";
    return (value / 86400).toFixed(1) + "d";
  }
  function bytes(value) {
    if (typeof value !== "number") return num(value);
    const units = ["B", "KB", "MB", "GB", "TB"];
    let index = 0;
    while (value >= 1024 && index < units.length - 1) { value /= 1024; index += 1; }
    return value.toFixed(index ? 1 : 0) + " " + units[index];
  }
  function fillColour(fraction) {
    return fraction >= 0.8 ? "var(--bad)" : fraction >= 0.5 ? "var(--warn)" : "var(--ok)";
  }

  // ---- charts ---------------------------------------------------------------------------------
  function lineChart(id, series, format) {
    const node = document.getElementById(id);
    const width = 400, height = 110, pad = 12;
    const longest = Math.max(2, ...series.map((s) => s.points.length));
    const values = series.flatMap((s) => s.points.filter((v) => v !== null));
    const top = Math.max(1e-9, ...values) * 1.1;
    const children = [];
    for (const fraction of [0.25, 0.5, 0.75]) {
      const y = pad + (height - 2 * pad) * (1 - fraction);
      children.push(svg("line", { x1: 0, x2: width, y1: y, y2: y, stroke: "#1b212b", "stroke-width": 1 }));
    }
    for (const s of series) {
      let d = "";
      let pen = false;
      s.points.forEach((value, index) => {
        if (value === null) { pen = false; return; }
        const x = (width * (index + longest - s.points.length)) / (longest - 1);
        const y = pad + (height - 2 * pad) * (1 - value / top);
        d += (pen ? "L" : "M") + x.toFixed(1) + " " + y.toFixed(1);
        pen = true;
      });
      if (s.fill && d) {
        const first = (width * (longest - s.points.length)) / (longest - 1);
        children.push(svg("path", { d: d + `L${width} ${height - pad}L${first.toFixed(1)} ${height - pad}Z`,
                                    fill: s.colour, opacity: 0.12 }));
      }
      if (d) children.push(svg("path", { d, fill: "none", stroke: s.colour, "stroke-width": 1.4,
                                          "vector-effect": "non-scaling-stroke" }));
    }
    const label = svg("text", { x: 3, y: 9 });
    label.textContent = "max " + format(top / 1.1);
    children.push(label);
    node.replaceChildren(...children);
  }

  // ---- page state (bounded) -------------------------------------------------------------------
  const latencyHistory = new Map();   // stage -> array of p99 seconds (or null), at most HISTORY_POINTS
  let lastSuccess = 0;

  function remember(stages) {
    for (const [stage, summary] of Object.entries(stages)) {
      if (!latencyHistory.has(stage)) {
        if (latencyHistory.size >= MAX_STAGES_SHOWN * 2) continue;
        latencyHistory.set(stage, []);
      }
    }
    for (const [stage, points] of latencyHistory) {
      const summary = stages[stage];
      points.push(summary && summary.p99_s !== null ? summary.p99_s : null);
      if (points.length > HISTORY_POINTS) points.splice(0, points.length - HISTORY_POINTS);
    }
  }

  // ---- rendering --------------------------------------------------------------------------------
  function renderHeader(doc) {
    text("health", doc.health || "?", "pill " + (doc.health || "unknown"));
    const ready = doc.readiness || {};
    text("ready", ready.ready ? "yes" : "no", ready.ready ? "pass" : "fail");
    const throughput = (doc.metrics || {}).throughput || {};
    text("events-rate", num(throughput.rate_10s));
    text("events-total", num(throughput.total, 0));
    const journal = doc.journal || {};
    text("backlog", num(journal.backlog, 0));
    const active = ((doc.alerts || {}).active) || [];
    text("alert-count", String(active.length), active.length ? "warn" : "pass");
    text("uptime", seconds((doc.metrics || {}).uptime_s));
    put("reasons", ready.ready ? el("span", { class: "pass" }, "ready") :
        (ready.reasons || []).map((reason) => el("div", {}, "• " + reason)));
  }

  function renderConnections(doc) {
    const connections = doc.connections || [];
    const live = connections.filter((c) => c.state === "connected" || c.state === "degraded").length;
    text("conn-summary", `${live}/${connections.length} live`);
    if (!connections.length) { put("connections", el("div", { class: "empty" }, "no source enabled")); return; }
    put("connections", connections.map((c) => {
      const quality = c.quality || {};
      const score = typeof quality.score === "number" ? quality.score : 0;
      return el("div", { class: "conn", "data-name": c.name },
        el("div", { class: "top" },
          el("div", {}, el("span", { class: "name" }, c.name), el("span", { class: "kind" }, c.kind || "")),
          el("span", { class: "pill " + c.state, "data-field": "state" }, c.state)),
        el("div", { class: "score", title: `quality ${score}` },
          el("i", { style: `width:${Math.max(0, Math.min(100, score))}%;background:${
            score >= 90 ? "var(--ok)" : score >= 70 ? "#7ee787" : score >= 40 ? "var(--warn)" : "var(--bad)"}` })),
        el("div", { class: "grid" },
          el("div", {}, el("span", {}, "quality"), el("b", { class: quality.band || "" }, `${score} ${quality.band || ""}`)),
          el("div", {}, el("span", {}, "rtt"), c.rtt_ms === null || c.rtt_ms === undefined ? "–" : num(c.rtt_ms, 1) + "ms"),
          el("div", {}, el("span", {}, "uptime"), num(c.uptime_pct, 1) + "%"),
          el("div", {}, el("span", {}, "reconnects"), num(c.reconnects, 0)),
          el("div", {}, el("span", {}, "last msg"), el("b", { "data-field": "last-message-age" }, seconds(c.last_message_age_s))),
          el("div", {}, el("span", {}, "in state"), seconds(c.state_age_s)),
          el("div", {}, el("span", {}, "errors"), num(c.recent_errors, 0)),
          el("div", {}, el("span", {}, "rtt p95"), c.rtt_p95_ms === null || c.rtt_p95_ms === undefined ? "–" : num(c.rtt_p95_ms, 1) + "ms")),
        c.error ? el("div", { class: "error" }, c.error) : null);
    }));
  }

  function renderAlerts(doc) {
    const alerts = doc.alerts || {};
    if (alerts.error) { put("alerts", el("div", { class: "fail" }, "metrics: " + alerts.error)); return; }
    const active = alerts.active || [];
    const resolved = (alerts.resolved || []).slice(0, 5);
    const now = doc.at || Date.now() / 1000;
    text("alert-summary", `${active.length} active · ${(alerts.resolved || []).length} resolved`);
    const rows = [];
    for (const a of active) {
      rows.push(el("div", { class: "alert " + a.severity },
        el("div", { class: "msg" }, el("b", { class: a.severity }, a.severity.toUpperCase() + " "), a.message),
        el("div", { class: "meta" }, `${a.key} · since ${seconds(now - a.first_seen)} · ×${a.count}`)));
    }
    for (const a of resolved) {
      rows.push(el("div", { class: "alert resolved " + a.severity },
        el("div", { class: "msg" }, "resolved: " + a.message),
        el("div", { class: "meta" }, `${a.key} · ${seconds(now - a.resolved_at)} ago`)));
    }
    put("alerts", rows.length ? rows : [el("div", { class: "empty" }, "none")]);
  }

  function renderRoutes(doc) {
    const notifier = doc.notifier || {};
    const routes = Object.entries(notifier.routes || {});
    const unrouted = Object.entries(notifier.unrouted || {});
    text("route-summary", unrouted.length ?
      "unrouted: " + unrouted.map(([kind, n]) => `${kind} ${num(n, 0)}`).join(", ") : "");
    if (!routes.length) { put("routes", el("div", { class: "empty" }, "no Discord sink")); return; }
    put("routes", el("table", {},
      el("tr", {}, ["route", "state", "sent", "pending", "failed"].map((h) => el("th", {}, h))),
      routes.map(([name, r]) => el("tr", { "data-route": name, title: `${r.kinds.join(", ")} → ${r.destination}` +
          (r.mention ? ` · pings ${r.mention}` : "") + (r.error ? ` · ${r.error}` : "") },
        el("td", {}, name),
        el("td", { class: r.state === "stopped" ? "fail" : "", "data-field": "state" }, r.state),
        el("td", { class: "n", "data-field": "sent" }, num(r.sent, 0)),
        el("td", { class: "n", "data-field": "pending" }, num(r.pending, 0)),
        el("td", { class: "n" + (r.failed ? " fail" : ""), "data-field": "failed" }, num(r.failed, 0))))));
  }

  function renderThroughput(doc) {
    const throughput = (doc.metrics || {}).throughput || {};
    const history = throughput.history || [];
    lineChart("throughput-chart", [{ points: history, colour: COLOURS[0], fill: true }], (v) => num(v) + "/s");
    const series = (throughput.series || []).slice().sort((a, b) => b.rate_60s - a.rate_60s || b.total - a.total);
    put("series",
      el("tr", {}, el("th", {}, "source"), el("th", {}, "type"), el("th", { class: "n" }, "10s/s"),
        el("th", { class: "n" }, "60s/s"), el("th", { class: "n" }, "1h"), el("th", { class: "n" }, "total")),
      series.length ? series.map((s) => el("tr", {},
        el("td", {}, s.source), el("td", {}, s.type), el("td", { class: "n" }, num(s.rate_10s)),
        el("td", { class: "n" }, num(s.rate_60s)), el("td", { class: "n" }, num(s.last_hour, 0)),
        el("td", { class: "n" }, num(s.total, 0)))) :
        [el("tr", {}, el("td", { class: "empty", colspan: 6 }, "no events yet"))]);
  }

  function renderLatency(doc) {
    const latency = (doc.metrics || {}).latency || {};
    const stages = latency.stages || {};
    remember(stages);
    const shown = [...latencyHistory.keys()].slice(0, MAX_STAGES_SHOWN);
    lineChart("latency-chart", shown.map((stage, index) => ({
      points: latencyHistory.get(stage), colour: COLOURS[index % COLOURS.length] })), seconds);
    put("latency-legend", shown.map((stage, index) =>
      el("span", {}, el("i", { style: "background:" + COLOURS[index % COLOURS.length] }), stage)));
    const regression = (doc.metrics || {}).regression || {};
    const names = Object.keys(stages);
    put("latency",
      el("tr", {}, el("th", {}, `stage (${num(latency.window_s, 0)}s)`), el("th", { class: "n" }, "n"),
        el("th", { class: "n" }, "p50"), el("th", { class: "n" }, "p95"), el("th", { class: "n" }, "p99"),
        el("th", { class: "n" }, "max"), el("th", { class: "n" }, "vs base")),
      names.length ? names.map((stage) => {
        const s = stages[stage];
        const r = regression["latency:" + stage] || {};
        return el("tr", {}, el("td", {}, stage), el("td", { class: "n" }, num(s.count, 0)),
          el("td", { class: "n" }, seconds(s.p50_s)), el("td", { class: "n" }, seconds(s.p95_s)),
          el("td", { class: "n" }, seconds(s.p99_s)), el("td", { class: "n" }, seconds(s.max_s)),
          el("td", { class: "n " + (r.alarm ? "fail" : "") }, r.ratio ? num(r.ratio) + "×" : "–"));
      }) : [el("tr", {}, el("td", { class: "empty", colspan: 7 }, "no samples in the window"))]);
  }

  function flatten(value, prefix, out, depth) {
    if (out.length >= 14) return out;
    if (value !== null && typeof value === "object" && !Array.isArray(value)) {
      if (depth >= 2) { out.push([prefix, `{${Object.keys(value).length}}`]); return out; }
      for (const [key, inner] of Object.entries(value)) flatten(inner, prefix ? prefix + "." + key : key, out, depth + 1);
    } else if (Array.isArray(value)) {
      out.push([prefix, `[${value.length}]`]);
    } else {
      out.push([prefix, value]);
    }
    return out;
  }

  function renderComponents(doc) {
    const blocks = [["dedup", doc.dedup], ["flow control", doc.flow], ["journal", doc.journal], ["notifier", doc.notifier]];
    put("components", blocks.map(([title, value]) => {
      const rows = flatten(value || {}, "", [], 0);
      return el("div", { "data-component": title },
        el("h3", {}, title),
        el("dl", { class: "kv" }, rows.length ? rows.flatMap(([key, v]) => [
          el("dt", { title: key }, key),
          el("dd", { class: key === "error" && v ? "fail" : key === "backpressure" && v ? "warn" : "" },
            key.endsWith("bytes") ? bytes(v) : typeof v === "boolean" ? (v ? "yes" : "no") : num(v))]) :
          [el("dt", {}, "–"), el("dd", {}, "")]));
    }));
  }

  function renderTree(doc) {
    const rows = [];
    (function walk(node, lead, last, root) {
      const mailbox = node.mailbox;
      const fraction = mailbox ? mailbox.size / Math.max(1, mailbox.capacity) : 0;
      const high = mailbox ? mailbox.high_water / Math.max(1, mailbox.capacity) : 0;
      const failure = node.last_failure ? `${node.last_failure.type}: ${node.last_failure.message}` : "";
      rows.push(el("div", { class: "tree-row", title: failure, "data-actor": node.name },
        el("div", { class: "label" }, el("span", { class: "guide" }, root ? "" : lead + (last ? "└ " : "├ ")),
          node.kind === "supervisor" ? el("b", {}, node.name) : node.name),
        el("span", { class: "st " + node.state + (node.stuck ? " stuck" : "") }, "● " + node.state + (node.stuck ? " STUCK" : "")),
        el("span", { class: "rs" + (node.restarts ? " hot" : "") }, node.restarts ? "↻" + node.restarts : "0"),
        mailbox ? el("div", { class: "bar", title: `${mailbox.size}/${mailbox.capacity} high-water ${mailbox.high_water}` },
          el("i", { style: `width:${(100 * Math.min(1, fraction)).toFixed(1)}%;background:${fillColour(fraction)}` }),
          el("b", { style: `left:${(100 * Math.min(1, high)).toFixed(1)}%` }),
          el("em", {}, `${mailbox.size}/${mailbox.capacity}`)) : el("span", {})));
      const children = node.children || [];
      children.forEach((child, index) => walk(child, root ? "" : lead + (last ? "  " : "│ "), index === children.length - 1, false));
    })(doc.tree || { name: "?", state: "unknown", children: [] }, "", true, true);
    put("tree", rows);
  }

  function renderRejects(doc) {
    const rejects = doc.rejects || {};
    const rate = (((doc.metrics || {}).rejects) || {}).rate_60s;
    text("reject-rate", rate === undefined ? "" : num(rate) + "/s over 60s");
    const reasons = Object.entries(rejects).sort((a, b) => b[1] - a[1]);
    put("rejects", reasons.length ? el("table", {}, reasons.map(([reason, count]) =>
      el("tr", {}, el("td", {}, reason), el("td", { class: "n" }, num(count, 0))))) :
      el("div", { class: "empty" }, "none"));
  }

  function render(doc) {
    renderHeader(doc);
    renderConnections(doc);
    renderAlerts(doc);
    renderRoutes(doc);
    renderThroughput(doc);
    renderLatency(doc);
    renderComponents(doc);
    renderTree(doc);
    renderRejects(doc);
  }

  // ---- polling ----------------------------------------------------------------------------------
  function banner(message) {
    const node = document.getElementById("banner");
    node.textContent = message || "";
    node.className = message ? "show" : "";
  }

  async function poll() {
    let delay = POLL_MS;
    try {
      // The session cookie (set at login, HttpOnly) goes with this same-origin request.
      const answer = await fetch("/api/status", { cache: "no-store", credentials: "same-origin" });
      if (answer.status === 401) {
        location.assign("/");  // the session ended (the instance changed its secret): log in again
        return;
      } else if (!answer.ok) {
        banner(`/api/status answered ${answer.status}`);
      } else {
        render(await answer.json());
        lastSuccess = Date.now();
        banner("");
      }
    } catch (error) {
      banner("No answer from the instance: " + error.message);
    }
    setTimeout(poll, delay);
  }

  setInterval(() => {
    if (!lastSuccess) return;
    const age = (Date.now() - lastSuccess) / 1000;
    text("updated", age < 1.5 ? "live" : seconds(age) + " ago", age < 5 ? "pass" : "fail");
  }, 250);

  poll();
})();
