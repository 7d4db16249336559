// netmesh collector page: reads /api/v1/{matrix,nodes,rca} and redraws; no framework.
// Every name from the API goes through textContent (never innerHTML).
"use strict";

const REFRESH_MS = (() => {
  const q = Number(new URLSearchParams(location.search).get("refresh"));
  return q > 0 ? q * 1000 : 5000;
})();

const MEASURES = {
  bandwidth: {
    protocol: "tcp", label: "TCP bandwidth", higherIsBetter: true,
    value: (p) => p.bandwidth_bits_per_second,
    text: (v) => fmtRate(v),
  },
  loss: {
    protocol: "udp", label: "UDP loss", higherIsBetter: false, fixedMax: 0.05,
    value: (p) => p.loss_ratio,
    text: (v) => (v * 100).toFixed(v < 0.1 ? 2 : 1) + " %",
  },
  rtt: {
    protocol: "tcp", label: "TCP RTT", higherIsBetter: false,
    value: (p) => p.rtt_seconds,
    text: (v) => fmtSeconds(v),
  },
  retransmits: {
    protocol: "tcp", label: "TCP retransmissions", higherIsBetter: false,
    value: (p) => p.retransmits,
    text: (v) => String(v),
  },
  lightLoss: {
    protocol: "light", label: "light-tier loss", higherIsBetter: false, fixedMax: 0.05,
    value: (p) => p.loss_ratio,
    text: (v) => (v * 100).toFixed(v < 0.1 ? 2 : 1) + " %",
  },
  lightRtt: {
    protocol: "light", label: "light-tier RTT (median)", higherIsBetter: false,
    value: (p) => p.rtt_seconds,
    text: (v) => fmtSeconds(v),
  },
  mtu: {
    protocol: "light", label: "MTU probes lost", higherIsBetter: false, fixedMax: 0.5,
    value: (p) => p.mtu_loss_ratio,
    text: (v) => (v >= 0.5 ? "MTU ✗ " : "") + Math.round(v * 100) + " %",
  },
};
function pct(v) { return v === null || v === undefined ? "–" : (v * 100).toFixed(v < 0.1 ? 2 : 1) + " %"; }

let paused = false;
let last = { matrix: null, podMatrix: null, nodes: null, rca: null, serverNow: null };

function $(id) { return document.getElementById(id); }
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else e.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}
function fmtRate(bps) {
  if (bps === null || bps === undefined) return "–";
  if (bps >= 1e9) return (bps / 1e9).toFixed(2) + " Gbit/s";
  if (bps >= 1e6) return (bps / 1e6).toFixed(0) + " Mbit/s";
  return (bps / 1e3).toFixed(0) + " kbit/s";
}
function fmtSeconds(s) {
  if (s === null || s === undefined) return "–";
  if (s < 1e-3) return (s * 1e6).toFixed(0) + " µs";
  if (s < 1) return (s * 1e3).toFixed(1) + " ms";
  return s.toFixed(1) + " s";
}
function fmtAge(s) {
  if (s === null || s === undefined) return "–";
  if (s < 90) return Math.round(s) + " s ago";
  if (s < 5400) return Math.round(s / 60) + " min ago";
  return (s / 3600).toFixed(1) + " h ago";
}

async function getJSON(url) {
  const resp = await fetch(url, { cache: "no-store" });
  if (!resp.ok) throw new Error(url + ": HTTP " + resp.status);
  const date = Date.parse(resp.headers.get("Date") || "");
  return { body: await resp.json(), serverNow: Number.isNaN(date) ? Date.now() / 1000 : date / 1000 };
}

async function refresh() {
  if (paused) return;
  try {
    const [m, pm, n, r, w] = await Promise.all([
      getJSON("/api/v1/matrix"), getJSON("/api/v1/matrix?network=pod"),
      getJSON("/api/v1/nodes"), getJSON("/api/v1/rca"), getJSON("/api/v1/sweeps"),
    ]);
    last = { matrix: m.body, podMatrix: pm.body, nodes: n.body, rca: r.body, sweeps: w.body,
             serverNow: m.serverNow };
    render();
    $("updated").textContent = "updated " + new Date().toLocaleTimeString() +
      " · refresh every " + REFRESH_MS / 1000 + " s";
  } catch (err) {
    $("updated").textContent = "cannot reach the collector: " + err.message;
  }
}

function render() {
  renderVerdict(last.rca);
  renderMatrix(last.matrix, last.rca, last.serverNow, $("matrix"));
  // The pod network's matrix beside it, when pod-network endpoints report: its
  // suspects are the nodes of the layer findings (overlay), not the host RCA's.
  const pods = last.podMatrix;
  $("pod-figure").hidden = !(pods && pods.paths.length);
  if (pods && pods.paths.length) {
    const layer = ((last.rca && last.rca.layer_findings) || []).filter((f) => f.node);
    renderMatrix(pods, { suspects: layer.map((f) => ({ node: f.node })), failing_paths: [] },
      last.serverNow, $("pod-matrix"));
  }
  renderRules(last.rca);
  renderAgents(last.nodes, last.rca);
  renderSweeps(last.sweeps);
}

function suspectSet(rca) {
  return new Set(((rca && rca.suspects) || []).map((s) => s.node));
}

function renderVerdict(rca) {
  const box = $("verdict");
  const verdict = (rca && rca.verdict) || "no-data";
  box.className = "verdict verdict-" + verdict;
  box.dataset.verdict = verdict;
  const text = {
    "ok": "All paths pass. Nothing to report.",
    "no-data": "No test results yet.",
    "off": "Root-cause analysis is off.",
  }[verdict] || rca.summary;
  const findings = ["layer_findings", "dns_findings", "service_findings"]
    .flatMap((key) => (rca && rca[key]) || []);
  const names = { dns: "DNS", service: "the Service" };
  // An ok (or not yet judged) mesh with layer/DNS/Service findings is no healthy cluster: warn.
  const calm = verdict === "ok" || verdict === "no-data";
  if (calm && findings.length) box.classList.add("verdict-findings");
  const what = [...new Set(findings.map((f) => names[f.layer] || "the " + f.layer))];
  const fails = `${what.join(" and ")} ${what.length > 1 ? "do" : "does"} not`;
  $("verdict-text").textContent = calm && findings.length
    ? (verdict === "ok" ? `All paths pass, but ${fails}:` : `No test results yet, but ${fails} pass:`)
    : text;
  const others = $("findings");
  others.replaceChildren();
  for (const f of findings) {
    others.append(el("li", { "data-finding": f.node || "cluster-wide", "data-layer": f.layer, "data-kind": f.kind },
      el("span", { class: "node", text: `${f.layer.toUpperCase()} · ${f.node || "cluster-wide"}` +
        (f.networks && f.networks.length === 1 && f.networks[0] === "pod" ? " (pod network)" : "") }),
      ` — ${f.kind}: ${f.summary}`));
  }
  const list = $("suspects");
  list.replaceChildren();
  // kernel drop evidence of the node findings (the suspects carry it)
  const drops = Object.fromEntries(((rca && rca.suspects) || []).map((s) => [s.node, s.drops]));
  for (const f of (rca && rca.findings) || []) {
    // Node findings keep data-node (the matrix outlines them); every finding has its kind.
    const attrs = { "data-kind": f.kind, "data-subject": f.subject, "data-layer": f.layer };
    if (f.kind === "node") attrs["data-node"] = f.subject;
    const criteria = Object.entries(f.criteria).map(([c, n]) => `${c} ${n}`).join(", ");
    const paths = f.evidence.map((p) => `${p.source}→${p.destination} ${p.protocol}: ` +
      p.reasons.join("; ")).join("\n");
    list.append(el("li", attrs,
      el("span", { class: "node", text: `${(f.layer || "underlay").toUpperCase()} · ${f.title}` }),
      ` — ${f.failing_paths} of its ${f.paths} path tests fail (${criteria}), ` +
      `confidence ${f.confidence.toFixed(2)}, lift ${f.lift.toFixed(2)}: ${f.rule}` +
      (drops[f.subject] && drops[f.subject].length ? ` — kernel drops ${fmtDrops(drops[f.subject])}` : ""),
      el("details", {}, el("summary", { text: "evidence" }), el("pre", { text: paths }))));
  }
}

function colour(measure, value, lo, hi) {
  // 0 = bad (red) .. 1 = good (green)
  let t;
  if (measure.fixedMax !== undefined) t = 1 - Math.min(1, value / measure.fixedMax);
  else if (hi <= lo) t = 1;
  else t = measure.higherIsBetter ? (value - lo) / (hi - lo) : 1 - (value - lo) / (hi - lo);
  if (measure === MEASURES.bandwidth && hi > 0) t = Math.min(1, value / hi); // share of the best
  return `hsl(${Math.round(t * 120)} ${t > 0.5 ? 45 : 70}% ${60 + (t > 0.5 ? 0 : 2)}%)`;
}

function renderMatrix(matrix, rca, serverNow, table) {
  if (!matrix) return;
  const measure = MEASURES[$("measure").value];
  const names = matrix.nodes;
  const suspects = suspectSet(rca);
  const failing = new Map();
  for (const p of (rca && rca.failing_paths) || []) {
    const k = p.source + "\u0000" + p.destination + "\u0000" + p.protocol;
    failing.set(k, p.reasons);
  }
  const byKey = new Map();
  for (const p of matrix.paths) byKey.set(p.source + "\u0000" + p.destination + "\u0000" + p.protocol, p);
  const values = matrix.paths
    .filter((p) => p.protocol === measure.protocol && p.success && measure.value(p) !== null)
    .map((p) => measure.value(p));
  const lo = values.length ? Math.min(...values) : 0;
  const hi = values.length ? Math.max(...values) : 0;
  $("legend").replaceChildren(
    el("span", { text: measure.higherIsBetter ? "low" : "high" }),
    el("span", { class: "bar" }),
    el("span", { text: measure.higherIsBetter ? "high" : "low" }));

  const active = document.activeElement && table.contains(document.activeElement)
    ? [document.activeElement.dataset.row, document.activeElement.dataset.col] : null;
  const head = el("tr", {}, el("th", { scope: "col" }, el("span", { class: "sr", text: "source \\ destination" }), "src \\ dst"));
  for (const d of names) {
    head.append(el("th", { scope: "col", class: suspects.has(d) ? "suspect" : null,
                           "data-node": d }, (suspects.has(d) ? "⚠ " : "") + d));
  }
  const tbody = el("tbody");
  names.forEach((s, i) => {
    const row = el("tr", {}, el("th", { scope: "row", class: suspects.has(s) ? "suspect" : null,
                                        "data-node": s }, (suspects.has(s) ? "⚠ " : "") + s));
    names.forEach((d, j) => {
      if (s === d) {
        row.append(el("td", { class: "self", "data-row": i, "data-col": j, tabindex: -1,
                              "aria-label": `${s} to itself: not tested` }, "·"));
        return;
      }
      const p = byKey.get(s + "\u0000" + d + "\u0000" + measure.protocol);
      const tcp = byKey.get(s + "\u0000" + d + "\u0000tcp");
      const udp = byKey.get(s + "\u0000" + d + "\u0000udp");
      const light = byKey.get(s + "\u0000" + d + "\u0000light");
      const reasons = [tcp, udp, light].flatMap((x) => x
        ? (failing.get(s + "\u0000" + d + "\u0000" + x.protocol) || []).map((r) => x.protocol + ": " + r)
        : []);
      const classes = [];
      let text = "–", style = null;
      if (!p) {
        classes.push("missing");
      } else if (!p.success) {
        text = "FAIL";
        style = "background: hsl(0 70% 62%)";
      } else if (measure.value(p) !== null) {
        text = measure.text(measure.value(p));
        style = "background: " + colour(measure, measure.value(p), lo, hi);
      }
      if (reasons.length) classes.push("fail");
      if (suspects.has(s) || suspects.has(d)) classes.push("suspect-path");
      const tip = [`${s} → ${d}`];
      if (light) {
        tip.push(light.success
          ? `light: loss ${pct(light.loss_ratio)} (forward ${pct(light.forward_loss_ratio)}, ` +
            `return ${pct(light.return_loss_ratio)}), RTT median ${fmtSeconds(light.rtt_seconds)}, ` +
            `p99 ${fmtSeconds(light.rtt_p99_seconds)}, MTU probes lost ${pct(light.mtu_loss_ratio)}`
          : `light: ${light.message}`);
      }
      for (const x of [tcp, udp]) {
        if (!x) continue;
        const age = serverNow ? fmtAge(serverNow - x.started_at) : "";
        if (!x.success) { tip.push(`${x.protocol}: ${x.result} ${x.message || ""} (${age})`); continue; }
        const parts = [fmtRate(x.bandwidth_bits_per_second)];
        if (x.protocol === "tcp") parts.push("RTT " + fmtSeconds(x.rtt_seconds), "retransmits " + (x.retransmits ?? "–"));
        else parts.push("loss " + MEASURES.loss.text(x.loss_ratio || 0), "jitter " + fmtSeconds(x.jitter_seconds));
        tip.push(`${x.protocol}: ${parts.join(", ")} (tested ${age})`);
      }
      if (reasons.length) tip.push("FAIL — " + reasons.join("; "));
      const cell = el("td", {
        class: classes.join(" ") || null, style, tabindex: -1, "data-row": i, "data-col": j,
        "data-source": s, "data-destination": d, "data-tip": tip.join("\n"),
        "aria-label": tip.join(". "),
      }, text);
      if (reasons.length) {
        const protos = [tcp, udp, light].filter((x) => x && failing.has(s + "\u0000" + d + "\u0000" + x.protocol)).map((x) => x.protocol);
        cell.append(el("small", { text: protos.join("+") + " FAIL" }));
      }
      row.append(cell);
    });
    tbody.append(row);
  });
  table.replaceChildren(el("thead", {}, head), tbody);
  // One tab stop for the grid (roving tabindex); arrows move inside it.
  let focus = active && table.querySelector(`td[data-row="${active[0]}"][data-col="${active[1]}"]`);
  const first = focus || table.querySelector("td[data-source]");
  if (first) first.tabIndex = 0;
  if (focus) focus.focus();
}

function onGridKey(ev) {
  const td = ev.target.closest("td");
  if (!td) return;
  const moves = { ArrowRight: [0, 1], ArrowLeft: [0, -1], ArrowDown: [1, 0], ArrowUp: [-1, 0] };
  const mv = moves[ev.key];
  if (ev.key === "Escape") { hideTip(); return; }
  if (!mv) return;
  ev.preventDefault();
  const r = Number(td.dataset.row) + mv[0], c = Number(td.dataset.col) + mv[1];
  const next = td.closest("table").querySelector(`td[data-row="${r}"][data-col="${c}"]`);
  if (next) {
    td.tabIndex = -1;
    next.tabIndex = 0;
    next.focus();
  }
}

function showTip(td) {
  const tip = $("tooltip");
  if (!td || !td.dataset.tip) { hideTip(); return; }
  tip.textContent = td.dataset.tip;
  tip.hidden = false;
  const r = td.getBoundingClientRect();
  const x = Math.min(window.innerWidth - tip.offsetWidth - 8, r.left);
  const y = r.bottom + 6 + tip.offsetHeight > window.innerHeight ? r.top - tip.offsetHeight - 6 : r.bottom + 6;
  tip.style.left = Math.max(8, x) + "px";
  tip.style.top = Math.max(8, y) + "px";
}
function hideTip() { $("tooltip").hidden = true; }

function renderRules(rca) {
  const rules = $("rules");
  const caption = rules.querySelector("caption");
  const list = ((rca && rca.rules) || []).filter((r) => r.lift > 1).slice(0, 10);
  rules.replaceChildren(caption);
  if (!list.length) {
    rules.append(el("tbody", {}, el("tr", {}, el("td", { text: "no rules: no failing paths" }))));
  } else {
    rules.append(el("thead", {}, el("tr", {}, ...["rule", "support", "confidence", "lift"].map((h) => el("th", { scope: "col", text: h })))));
    const body = el("tbody");
    for (const r of list) {
      body.append(el("tr", {},
        el("td", { text: `{${r.antecedent.join(", ")}} → {${r.consequent.join(", ")}}` }),
        el("td", { class: "num", text: r.support.toFixed(3) }),
        el("td", { class: "num", text: r.confidence.toFixed(2) }),
        el("td", { class: "num", text: r.lift.toFixed(2) })));
    }
    rules.append(body);
  }
  const failing = $("failing");
  const fcap = failing.querySelector("caption");
  const paths = ((rca && rca.failing_paths) || []).slice(0, 30);
  failing.replaceChildren(fcap);
  if (!paths.length) {
    failing.append(el("tbody", {}, el("tr", {}, el("td", { text: "none" }))));
    return;
  }
  failing.append(el("thead", {}, el("tr", {}, ...["path", "protocol", "why"].map((h) => el("th", { scope: "col", text: h })))));
  const body = el("tbody");
  for (const p of paths) {
    body.append(el("tr", {}, el("td", { text: `${p.source} → ${p.destination}` }),
      el("td", { text: p.protocol }), el("td", { text: p.reasons.join("; ") })));
  }
  failing.append(body);
}

// "NETFILTER_DROP 168/s, NO_SOCKET 1.3/s": a node's kernel drop reasons at a significant rate;
// a suspect's also with the rule of its drop item ("(rule {dst-drops=NETFILTER_DROP} → {FAIL}, ...)").
function fmtDrops(evidence) {
  if (!evidence || !evidence.length) return "";
  return evidence.map((d) => `${d.reason} ${d.per_second.toFixed(d.per_second < 10 ? 1 : 0)}/s` +
    (d.rule ? ` (rule {${d.rule.antecedent.join(", ")}} → {${d.rule.consequent.join(", ")}}, ` +
      `confidence ${d.rule.confidence.toFixed(2)}, lift ${d.rule.lift.toFixed(2)})` : "")).join(", ");
}

// A node's DNS or Service check over its window: "ok 1.2 ms", "5/6 failed (timeout)", "–".
function checkCell(c, kind) {
  if (!c || !c.up) return el("td", { class: "check", "data-check": kind, text: "–" });
  const bad = c.failure_ratio !== null && c.failure_ratio >= 0.5;
  const text = c.failures
    ? `${c.failures}/${c.attempts} failed (${c.dominant_failure})`
    : (c.median_seconds !== null ? `ok ${fmtSeconds(c.median_seconds)}` : "ok");
  return el("td", { class: bad ? "check down" : "check up", "data-check": kind, title: c.subject, text });
}

function renderAgents(nodes, rca) {
  const drops = (rca && rca.drops) || {};
  const table = $("agents");
  const caption = table.querySelector("caption");
  table.replaceChildren(caption);
  if (!nodes) return;
  table.append(el("thead", {}, el("tr", {}, ...["node", "agent", "report age", "probe", "iperf3 server", "restarts", "scheduler lag", "failing paths", "kernel drops", "DNS", "Service", "bandwidth"].map((h) => el("th", { scope: "col", text: h })))));
  const body = el("tbody");
  for (const n of nodes.nodes) {
    const h = n.health || {};
    body.append(el("tr", { "data-node": n.name },
      el("th", { scope: "row", text: n.name }),
      el("td", { class: n.up ? "up" : "down", text: n.up ? "up" : "down" }),
      el("td", { class: "num", text: fmtAge(n.report_age_seconds) }),
      el("td", { text: n.probe ? `${n.probe.mode} ${n.probe.up ? "up" : "down"}` : "–" }),
      el("td", { class: h.iperf3_server_up ? "up" : "down", text: n.health ? (h.iperf3_server_up ? "up" : "down") : "–" }),
      el("td", { class: "num", text: n.health ? h.iperf3_server_restarts : "–" }),
      el("td", { class: "num", text: n.health ? fmtSeconds(h.scheduler_lag_seconds) : "–" }),
      el("td", { class: "num", text: n.failing_paths ?? "–" }),
      el("td", { class: "drops", text: fmtDrops(drops[n.name]) || (n.drops && n.drops.up ? "none" : "–") }),
      checkCell(n.dns, "dns"),
      checkCell(n.service, "service"),
      el("td", {}, el("button", { type: "button", class: "run-node", "data-node": n.name,
                                  "aria-label": `Run a bandwidth sweep of ${n.name} now` }, "Run now"))));
  }
  table.append(body);
}

// ---------------------------------------------------------------- on-demand sweeps

let selectedPair = null;

function selectPair(td) {
  if (!td || !td.dataset.source) return;
  selectedPair = { source: td.dataset.source, destination: td.dataset.destination };
  const b = $("run-pair");
  b.disabled = false;
  b.textContent = `Run bandwidth test ${selectedPair.source} → ${selectedPair.destination} now`;
  b.title = "";
}

function sweepTarget(t) {
  if (t.node) return `node ${t.node}`;
  if (t.mesh) return "every pair";
  return `${t.source} → ${t.destination}`;
}

async function requestSweep(body) {
  const headers = { "Content-Type": "application/json" };
  const token = $("token").value.trim();
  if (token) headers.Authorization = "Bearer " + token;
  const status = $("sweep-status");
  status.textContent = "asking for a sweep of " + sweepTarget(body) + "…";
  try {
    const resp = await fetch("/api/v1/sweeps", { method: "POST", headers, body: JSON.stringify(body) });
    const answer = await resp.json().catch(() => ({}));
    if (!resp.ok) {
      status.textContent = `refused (HTTP ${resp.status}): ${answer.error || resp.statusText}` +
        (resp.status === 401 ? " — give the collector's token above" : "");
      return;
    }
    status.textContent = `sweep ${answer.id} of ${sweepTarget(answer.target)} ` +
      (resp.status === 202 ? "requested" : "already pending") + `: ${answer.tests} tests`;
    refresh();
  } catch (err) {
    status.textContent = "cannot reach the collector: " + err.message;
  }
}

function renderSweeps(sweeps) {
  const table = $("sweeps");
  const caption = table.querySelector("caption");
  table.replaceChildren(caption);
  if (!sweeps || !sweeps.sweeps.length) return;
  table.append(el("thead", {}, el("tr", {}, ...["sweep", "of", "state", "progress", "failed", "starts", "note"].map((h) => el("th", { scope: "col", text: h })))));
  const body = el("tbody");
  for (const s of sweeps.sweeps) {
    const starts = s.start_at - sweeps.now;
    body.append(el("tr", { "data-sweep": s.id },
      el("th", { scope: "row", text: s.id }),
      el("td", { text: sweepTarget(s.target) }),
      el("td", { class: s.state === "expired" ? "down" : (s.state === "done" ? "up" : null), text: s.state }),
      el("td", {}, el("progress", { max: s.tests, value: s.completed, "aria-label": `${s.completed} of ${s.tests} tests` }),
         ` ${s.completed}/${s.tests}`),
      el("td", { class: "num", text: s.failed }),
      el("td", { class: "num", text: starts > 0 ? `in ${starts.toFixed(0)} s` : fmtAge(-starts) }),
      el("td", { text: s.reason || "" })));
  }
  table.append(body);
}

{
  // ?measure=lightLoss (any key of MEASURES) picks the colouring, e.g. for a bookmark.
  const wanted = new URLSearchParams(location.search).get("measure");
  if (wanted && Object.hasOwn(MEASURES, wanted)) $("measure").value = wanted;
}
$("measure").addEventListener("change", () => render());
$("pause").addEventListener("click", (ev) => {
  paused = !paused;
  ev.target.setAttribute("aria-pressed", String(paused));
  ev.target.textContent = paused ? "Resume refresh" : "Pause refresh";
  if (!paused) refresh();
});
const grid = $("matrix");
grid.addEventListener("keydown", onGridKey);
grid.addEventListener("focusin", (ev) => { showTip(ev.target.closest("td")); selectPair(ev.target.closest("td")); });
grid.addEventListener("click", (ev) => selectPair(ev.target.closest("td")));
$("run-pair").addEventListener("click", () => { if (selectedPair) requestSweep(selectedPair); });
$("agents").addEventListener("click", (ev) => {
  const b = ev.target.closest("button.run-node");
  if (b) requestSweep({ node: b.dataset.node });
});
{
  const saved = sessionStorage.getItem("netmesh-token");
  if (saved) $("token").value = saved;
  $("token").addEventListener("change", () => sessionStorage.setItem("netmesh-token", $("token").value));
}
grid.addEventListener("focusout", hideTip);
grid.addEventListener("mouseover", (ev) => showTip(ev.target.closest("td")));
grid.addEventListener("mouseleave", hideTip);
// The pod network's matrix: tooltips and keyboard (sweeps are the host network's).
const podGrid = $("pod-matrix");
podGrid.addEventListener("keydown", onGridKey);
podGrid.addEventListener("focusin", (ev) => showTip(ev.target.closest("td")));
podGrid.addEventListener("focusout", hideTip);
podGrid.addEventListener("mouseover", (ev) => showTip(ev.target.closest("td")));
podGrid.addEventListener("mouseleave", hideTip);
document.addEventListener("keydown", (ev) => { if (ev.key === "Escape") hideTip(); });

refresh();
setInterval(refresh, REFRESH_MS);
