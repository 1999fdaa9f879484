// kvplan page: every figure comes from the JSON API (the CLI's --json); this file only draws it.
"use strict";

const $ = (id) => document.getElementById(id);
const GiB = 2 ** 30;
const gib = (b) => (b / GiB).toFixed(2) + " GiB";
const int = (n) => (n === null || n === undefined ? "-" : Number(n).toLocaleString("en-US"));
const COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"];
const SVG = "http://www.w3.org/2000/svg";
let generation = 0;
let explained = 0;

async function api(path, body) {
  const init = body === undefined ? {} : {
    method: "POST", headers: { "Content-Type": "application/json" }, body: restoreBare(JSON.stringify(body)) };
  const response = await fetch(path, init);
  const data = await response.json().catch(() => ({ detail: `HTTP ${response.status}` }));
  if (!response.ok) throw new Error(data.detail || `HTTP ${response.status}`);
  return data;
}

// config.json files written by Python may hold the bare tokens Infinity, -Infinity and NaN (Mamba's
// time_step_limit: [0.0, Infinity]), which JSON.parse refuses and the server reads: outside strings they
// become marked strings here and are written back bare into the request body.
const BARE = /("(?:[^"\\]|\\.)*")|(-?Infinity|NaN)/g;
const MARK = "\u0001kvplan-bare:";
const MARKED = /"\\u0001kvplan-bare:(-?Infinity|NaN)"/g;
const parseConfig = (text) => JSON.parse(text.replace(BARE, (m, str, bare) => str ?? JSON.stringify(MARK + bare)));
const restoreBare = (json) => json.replace(MARKED, "$1");

function modelInput() {
  const text = $("config").value.trim();
  if (!text) return { model: $("model").value };
  let config;
  try { config = parseConfig(text); } catch (e) { throw new Error(`the pasted config is not JSON: ${e.message}`); }
  if (typeof config !== "object" || Array.isArray(config) || config === null)
    throw new Error("the pasted config must be a JSON object");
  return { config };
}

function positive(id, label) {
  const value = Number($(id).value);
  if (!Number.isInteger(value) || value < 1) throw new Error(`${label} must be a positive whole number`);
  return value;
}

function inputs() {
  const gpus = [...$("gpu").selectedOptions].map((o) => o.value);
  $("gpu-chosen").textContent = gpus.length ? `chosen: ${gpus.join(", ")}` : "";
  if (!gpus.length) throw new Error("choose at least one GPU");
  const util = Number($("util").value);
  if (!(util > 0 && util <= 1)) throw new Error("memory utilization must be in (0, 1]");
  return { source: modelInput(), gpus, tp: positive("tp", "GPUs per replica"), util, engine: $("engine").value,
           dtype: $("dtype").value || null, kv_dtype: $("kv-dtype").value, seq: positive("seq", "tokens per request"),
           users: positive("users", "concurrent users"), maxGpus: positive("max-gpus", "max GPUs per replica"),
           rankBy: $("rank-by").value, allowQuant: $("allow-quant").checked, allowFp8Kv: $("allow-fp8-kv").checked,
           features: features(), targets: targets(), loadOutput: positive("load-output", "output tokens per request"),
           loadPrompts: positive("load-prompts", "requests in the run") };
}

// fit's speed targets (blank: none) and how they are judged at load, as the API names them
function targets() {
  const out = { load_stat: $("load-stat").value };
  for (const [id, key, label] of [["min-tps", "min_tokens_per_sec", "min tok/s per user"],
                                  ["max-ttft", "max_ttft", "max TTFT"]]) {
    const text = $(id).value.trim();
    if (!text) continue;
    const value = Number(text);
    if (!(value > 0)) throw new Error(`${label} must be a number above 0 (or blank)`);
    out[key] = value;
  }
  return out;
}

// the serving features, named as the API (and the CLI) name them; a feature left at its default is not sent
function features() {
  const count = (id, label, least) => {
    const n = Number($(id).value || 0);
    if (!Number.isInteger(n) || n < least) throw new Error(`${label} must be a whole number >= ${least}`);
    return n;
  };
  const out = {};
  const shared = count("shared-prefix", "shared prefix tokens", 0);
  if (shared) out.shared_prefix = shared;
  const loras = count("max-loras", "LoRA slots", 0);
  if (loras) { out.max_loras = loras; out.max_lora_rank = count("max-lora-rank", "LoRA max rank", 1); }
  const offload = Number($("cpu-offload-gb").value || 0);
  if (!(offload >= 0)) throw new Error("CPU offload GiB must be a number >= 0");
  if (offload) out.cpu_offload_gb = offload;
  const method = $("spec-method").value;
  if (method) {
    out.speculative_method = method;
    out.num_speculative_tokens = count("spec-tokens", "speculative tokens", 1);
  }
  return out;
}

function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }

function cell(row, text, cls) {
  const td = document.createElement("td");
  td.textContent = text;
  if (cls) td.className = cls;
  row.appendChild(td);
  return td;
}

function svgEl(parent, tag, attrs, text) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  if (text !== undefined) el.textContent = text;
  parent.appendChild(el);
  return el;
}

function showScenarios(plan, x) {
  const body = $("scenarios").tBodies[0];
  clear(body);
  for (const s of plan.scenarios) {
    const row = body.insertRow();
    row.dataset.gpu = s.gpu;
    const total = s.engine ? s.engine.total_bytes : s.gpu_memory_bytes;
    const weights = (s.budget_terms.find((t) => t.kind === "weights") || { bytes: plan.weights_bytes }).bytes;
    cell(row, s.gpu);
    cell(row, s.util);
    cell(row, gib(total));
    cell(row, gib(weights));
    cell(row, gib(s.kv_pool_bytes)).dataset.field = "kv_pool";
    cell(row, int(s.max_concurrent_requests)).dataset.field = "max_concurrent_requests";
    cell(row, int(s.max_seq_len)).dataset.field = "max_seq_len";
    // the CLI's verdict: fits, else short by what the requests need minus the (possibly negative) pool
    cell(row, s.fits ? "yes" : `no: short ${gib(s.shortfall_bytes)}`, s.fits ? "yes" : "no").dataset.field = "fits";
    const starts = s.starts === null ? "-" : (s.starts ? "yes" : "no");
    cell(row, starts, s.starts === false ? "no" : "yes").dataset.field = "starts";
  }
  const errors = $("start-errors");
  clear(errors);
  for (const s of plan.scenarios.filter((x) => x.start_error)) {
    const li = document.createElement("li");
    li.className = "no";
    li.textContent = `${s.gpu}: ${s.start_error}`;
    errors.appendChild(li);
  }
  const kv = plan.kv_bytes_per_token;
  $("summary").textContent = `${plan.model.name}: ${int(plan.params)} parameters, weights ${gib(plan.weights_bytes)} ` +
    `per GPU, KV ${int(kv)} B per token; ${x.users} users x ${int(x.seq)} tokens need ${gib(plan.kv_cache_bytes)} ` +
    `of KV per GPU (TP ${plan.deployment.tp}, engine ${plan.deployment.engine}).`;
}

function showMemory(plan) {
  const svg = $("memory");
  clear(svg);
  const rows = plan.scenarios.map((s) => {
    const total = s.engine ? s.engine.total_bytes : s.gpu_memory_bytes;
    const parts = s.budget_terms.map((t) => [t.label, t.bytes]);
    parts.push(["KV pool", Math.max(0, s.kv_pool_bytes)]);
    const short = s.kv_pool_bytes < 0 ? -s.kv_pool_bytes : 0;
    parts.push(["left by utilization", Math.max(0, total - s.usable_bytes)]);
    return { label: `${s.gpu} @ ${Math.round(s.util * 100)}%`, total, parts, short };
  });
  const max = Math.max(...rows.map((r) => Math.max(r.total, r.parts.reduce((a, [, b]) => a + b, 0))));
  const left = 110, width = 680, barH = 22, gap = 14;
  const height = rows.length * (barH + gap) + 40;
  svg.setAttribute("height", String(height));
  svg.setAttribute("viewBox", `0 0 900 ${height}`);
  const labels = [...new Set(rows.flatMap((r) => r.parts.map(([l]) => l)))];
  rows.forEach((r, i) => {
    const y = 10 + i * (barH + gap);
    svgEl(svg, "text", { x: 0, y: y + 15 }, r.label);
    let x = left;
    for (const [label, bytes] of r.parts) {
      const w = (bytes / max) * width;
      const rect = svgEl(svg, "rect", { x, y, width: Math.max(0, w), height: barH,
        fill: COLORS[labels.indexOf(label) % COLORS.length] });
      svgEl(rect, "title", {}, `${label}: ${gib(bytes)}`);
      x += w;
    }
    const tx = left + (r.total / max) * width;
    svgEl(svg, "line", { x1: tx, x2: tx, y1: y - 3, y2: y + barH + 3, stroke: "#000", "stroke-dasharray": "4 3" });
    svgEl(svg, "text", { x: Math.min(tx + 4, left + width + 4), y: y + 15 }, gib(r.total));
    if (r.short) svgEl(svg, "text", { x: left, y: y + barH + 11, fill: "#b00020", "data-short": "" },
                       `KV pool short by ${gib(r.short)}: the weights and overheads exceed the budget`);
  });
  let lx = left;
  const ly = rows.length * (barH + gap) + 22;
  for (const label of labels) {
    svgEl(svg, "rect", { x: lx, y: ly - 9, width: 10, height: 10, fill: COLORS[labels.indexOf(label) % COLORS.length] });
    svgEl(svg, "text", { x: lx + 14, y: ly }, label);
    lx += 14 + label.length * 6.5 + 16;
  }
}

function showChart(series) {
  const svg = $("chart");
  clear(svg);
  const caps = Object.entries(series.caps || {}).filter(([, n]) => n);
  $("chart-caps").textContent = caps.length ? "Not capped: the engine runs at most " +
    caps.map(([label, n]) => `${int(n)} requests at once on ${label}`).join(", ") +
    " (max_num_seqs), as the verdict table counts them." : "";
  const W = 900, H = 380, L = 60, R = 200, T = 10, B = 40;
  const xs = series.lengths;
  const all = Object.values(series.series).concat(Object.values(series.naive)).flat().filter((v) => v > 0);
  if (!all.length) { svgEl(svg, "text", { x: L, y: 40 }, "nothing fits: no request of any length"); return; }
  const lx = (v) => Math.log10(v);
  const [x0, x1] = [lx(xs[0]), lx(xs[xs.length - 1])];
  const y0 = Math.floor(lx(Math.min(...all))), y1 = Math.ceil(lx(Math.max(...all)));
  const px = (v) => L + ((lx(v) - x0) / (x1 - x0 || 1)) * (W - L - R);
  const py = (v) => T + (1 - (lx(v) - y0) / (y1 - y0 || 1)) * (H - T - B);
  svgEl(svg, "line", { x1: L, x2: W - R, y1: H - B, y2: H - B, stroke: "#555" });
  svgEl(svg, "line", { x1: L, x2: L, y1: T, y2: H - B, stroke: "#555" });
  for (let e = y0; e <= y1; e++) {
    svgEl(svg, "line", { x1: L, x2: W - R, y1: py(10 ** e), y2: py(10 ** e), stroke: "#eee" });
    svgEl(svg, "text", { x: 4, y: py(10 ** e) + 4 }, int(10 ** e));
  }
  for (const v of [xs[0], xs[Math.floor(xs.length / 2)], xs[xs.length - 1]])
    svgEl(svg, "text", { x: px(v) - 14, y: H - B + 16 }, int(v));
  svgEl(svg, "text", { x: L + 120, y: H - 6 }, "tokens per request (log scale); y: concurrent requests (log scale)");
  Object.keys(series.series).forEach((label, i) => {
    const color = COLORS[i % COLORS.length];
    for (const [ys, dash, suffix] of [[series.series[label], "", "kvplan"], [series.naive[label], "6 4", "article"]]) {
      const points = xs.map((x, j) => [x, ys[j]]).filter(([, y]) => y > 0);
      if (!points.length) continue;
      const path = svgEl(svg, "polyline", { fill: "none", stroke: color, "stroke-width": 2,
        points: points.map(([x, y]) => `${px(x).toFixed(1)},${py(y).toFixed(1)}`).join(" ") });
      if (dash) path.setAttribute("stroke-dasharray", dash);
      path.dataset.series = `${label} ${suffix}`;
    }
    svgEl(svg, "text", { x: W - R + 10, y: T + 14 + i * 16, fill: color }, `${label}`);
  });
}

function showFit(fit) {
  const body = $("fit").tBodies[0];
  clear(body);
  const meeting = fit.candidates.filter((c) => c.meets_targets);
  fit.candidates.forEach((c, i) => {
    const row = body.insertRow();
    cell(row, String(i + 1));
    cell(row, c.gpu);
    cell(row, c.layout);
    cell(row, String(c.replicas));
    cell(row, c.weight_scheme);
    cell(row, c.kv_dtype);
    cell(row, c.decode_tokens_per_sec_per_user.toFixed(1));
    cell(row, c.ttft_seconds.toFixed(3));
    const load = c.under_load;
    cell(row, load ? (load.ttft_ms.median / 1000).toFixed(3) : "-");
    cell(row, load && load.tpot_ms.median ? (1000 / load.tpot_ms.median).toFixed(1) : "-");
    cell(row, c.cost_per_hour === null ? "-" : c.cost_per_hour.toFixed(2));
    cell(row, c.cost_per_million_tokens === null ? "-" : c.cost_per_million_tokens.toFixed(3));
    const cmd = cell(row, "", "cmd");
    const code = document.createElement("code");
    code.textContent = c.command;
    const button = document.createElement("button");
    button.type = "button";
    button.className = "copy";
    button.textContent = "copy";
    button.addEventListener("click", () => copy(c.command, button));
    cmd.append(code, " ", button);
  });
  const rejected = Object.keys(fit.rejected).length;
  $("fit-note").textContent = `${int(fit.evaluated)} candidates evaluated in ${fit.search_seconds} s` +
    (meeting.length ? "" : "; no candidate meets every target") +
    (rejected ? `; ${rejected} GPU / precision families rejected` : "") + ". " + fit.notes.join(" ");
}

async function copy(text, button) {
  try {
    await navigator.clipboard.writeText(text);
  } catch {  // no clipboard permission (plain http): select the text instead
    const range = document.createRange();
    range.selectNodeContents(button.previousSibling.previousSibling || button.parentNode);
    getSelection().removeAllRanges();
    getSelection().addRange(range);
  }
  button.textContent = "copied";
  setTimeout(() => { button.textContent = "copy"; }, 1500);
}

function showLoad(load) {
  const body = $("load").tBodies[0];
  clear(body);
  if (load.error) { $("load-summary").textContent = `not simulated: ${load.error}`; return; }
  for (const [label, key] of [["TTFT (ms)", "ttft_ms"], ["TPOT (ms)", "tpot_ms"], ["ITL (ms)", "itl_ms"],
                              ["E2E latency (ms)", "e2el_ms"]]) {
    const row = body.insertRow();
    cell(row, label);
    for (const stat of ["mean", "median", "p99"]) cell(row, load[key][stat].toFixed(2));
  }
  const s = load.scheduler;
  $("load-summary").textContent = `${load.model} on ${load.tp * load.pp} x ${load.gpu} (${load.engine} ` +
    `${load.engine_version}): ${load.request_throughput.toFixed(2)} req/s, ` +
    `${load.output_tokens_per_sec.toFixed(1)} output tok/s over ${load.duration_seconds.toFixed(1)} s; ` +
    `max_num_seqs ${int(s.max_num_seqs)}, ${int(s.token_budget)} tokens per pass, KV pool ${int(s.kv_tokens)} ` +
    `tokens, ${int(load.preemptions)} preemptions. ${load.assumptions[0]}.`;
}

function showDerivation(steps) {
  const list = $("derivation");
  clear(list);
  for (const step of steps) {
    const li = document.createElement("li");
    li.textContent = step;
    list.appendChild(li);
  }
}

function setError(message) {
  $("error").hidden = !message;
  $("error").textContent = message || "";
  // results drawn for an earlier input stay on the page, marked stale, until an input is valid again
  const stale = Boolean(message) && document.body.dataset.ready !== undefined;
  document.body.classList.toggle("stale", stale);
  $("stale").hidden = !stale;
}

async function update() {
  const mine = ++generation;
  let x;
  try { x = inputs(); } catch (e) { setError(e.message); return; }
  setError("");
  $("status").textContent = "computing...";
  const engine = ENGINES.byName[x.engine] || {};
  const plan = { ...x.source, gpu: x.gpus, tp: x.tp, util: x.util, engine: x.engine, dtype: x.dtype,
                 kv_dtype: x.kv_dtype, seq: x.seq, batch: x.users,
                 max_model_len: engine.max_model_len_from_seq ? x.seq : null, explain: true, ...x.features };
  const spec = x.features.speculative_method ?
    { speculative_method: x.features.speculative_method, num_speculative_tokens: x.features.num_speculative_tokens } :
    {};
  const fitEngine = engine.fit ? x.engine : ENGINES.default;
  const output = Math.min(x.loadOutput, Math.max(1, x.seq - 1));
  const load = api("/api/perf", { ...x.source, gpu: x.gpus[0], tp: x.tp, util: x.util, engine: x.engine,
                                  dtype: x.dtype, kv_dtype: x.kv_dtype, prompt: Math.max(1, x.seq - output), output,
                                  concurrency: x.users, num_prompts: x.loadPrompts })
    .catch((e) => ({ error: e.message }));
  try {
    const [p, series, fit] = await Promise.all([
      api("/api/plan", plan),
      api("/api/concurrency", { ...x.source, gpu: x.gpus, util: [x.util], tp: x.tp, engine: x.engine,
                                dtype: x.dtype, kv_dtype: x.kv_dtype }),
      api("/api/fit", { ...x.source, users: x.users, seq: x.seq, gpu: x.gpus, engine: fitEngine, top: 5,
                        max_gpus: x.maxGpus, rank_by: x.rankBy, allow_quant: x.allowQuant,
                        allow_fp8_kv: x.allowFp8Kv, ...spec, ...x.targets }),
    ]);
    if (mine !== generation) return;  // a newer input change is on its way
    showScenarios(p, x);
    showMemory(p);
    showChart(series);
    showFit(fit);
    showLoad(await load);
    showDerivation(p.derivation || []);
    $("status").textContent = "";
    document.body.dataset.ready = String(mine);
  } catch (e) {
    if (mine !== generation) return;
    setError(e.message);
    $("status").textContent = "";
  }
}

async function explainLog() {
  const mine = ++explained;
  const out = $("explain-out");
  const log = $("log").value;
  if (!log.trim()) { clear(out); return; }
  try {
    const d = await api("/api/explain", { log, gpu: $("log-gpu").value || null });
    if (mine !== explained) return;  // a newer log or GPU is on its way
    clear(out);
    const table = document.createElement("table");
    table.id = "explain-table";
    const head = table.createTHead().insertRow();
    for (const h of ["figure", "logged", "predicted"]) cell(head, h);
    for (const [k, v] of Object.entries(d.predicted)) {
      const row = table.insertRow();
      row.dataset.figure = k;
      cell(row, k);
      cell(row, d.logged[k] === undefined ? "-" : int(Math.round(d.logged[k] * 100) / 100));
      cell(row, int(Math.round(v * 100) / 100));
    }
    out.appendChild(table);
    for (const line of [...d.flags, ...d.assumptions]) {
      const p = document.createElement("p");
      p.className = "note";
      p.textContent = line;
      out.appendChild(p);
    }
  } catch (e) {
    if (mine !== explained) return;
    clear(out);
    const p = document.createElement("p");
    p.id = "explain-error";
    p.className = "no";
    p.textContent = e.message;
    out.appendChild(p);
  }
}

// the form's inputs live in the URL's query (a pasted config or log does not): a shared link restores them
const SHARED = ["model", "gpu", "tp", "util", "engine", "dtype", "kv-dtype", "seq", "users", "max-gpus", "rank-by",
                "allow-quant", "allow-fp8-kv", "shared-prefix", "max-loras", "max-lora-rank", "cpu-offload-gb",
                "spec-method", "spec-tokens", "load-output", "load-prompts", "min-tps", "max-ttft", "load-stat"];

function saveState() {
  const query = new URLSearchParams();
  for (const id of SHARED) {
    const el = $(id);
    if (el.type === "checkbox") { if (el.checked) query.set(id, "1"); }
    else if (el.multiple) query.set(id, [...el.selectedOptions].map((o) => o.value).join(","));
    else if (el.value !== "") query.set(id, el.value);
  }
  history.replaceState(null, "", `${location.pathname}?${query}`);
}

function restoreState() {
  const query = new URLSearchParams(location.search);
  for (const id of SHARED) {
    if (!query.has(id)) continue;
    const el = $(id), value = query.get(id);
    if (el.type === "checkbox") el.checked = value === "1";
    else if (el.multiple) { const chosen = value.split(","); for (const o of el.options) o.selected = chosen.includes(o.value); }
    else el.value = value;
  }
}

function debounce(fn, ms) {
  let timer;
  return () => { clearTimeout(timer); timer = setTimeout(fn, ms); };
}

// the registered engines (GET /api/engines): the select's options, what fit plans, what takes max_model_len
const ENGINES = { default: null, byName: {} };

async function start() {
  const [models, gpus, engines] = await Promise.all([api("/api/models"), api("/api/gpus"), api("/api/engines")]);
  ENGINES.default = engines.default;
  for (const e of engines.engines) {
    ENGINES.byName[e.name] = e;
    $("engine").add(new Option(e.label, e.name, false, e.name === engines.default));
  }
  for (const m of models) $("model").add(new Option(`${m.alias} (${m.hf_id})`, m.alias, false, m.alias === "falcon-7b"));
  for (const g of gpus) {
    $("gpu").add(new Option(`${g.alias} - ${g.name}`, g.alias, false, ["a10g", "h100"].includes(g.alias)));
    $("log-gpu").add(new Option(`${g.alias} - ${g.name}`, g.alias));
  }
  restoreState();
  const later = debounce(() => { saveState(); update(); }, 250);
  for (const id of ["model", "gpu", "tp", "util", "engine", "dtype", "kv-dtype", "seq", "users", "config",
                    "max-gpus", "rank-by", "allow-quant", "allow-fp8-kv", "shared-prefix", "max-loras",
                    "max-lora-rank", "cpu-offload-gb", "spec-method", "spec-tokens", "load-output",
                    "load-prompts", "min-tps", "max-ttft", "load-stat"]) {
    $(id).addEventListener("input", later);
    $(id).addEventListener("change", later);
  }
  $("config-file").addEventListener("change", async () => {
    const file = $("config-file").files[0];
    if (file) { $("config").value = await file.text(); later(); }
  });
  $("config-clear").addEventListener("click", () => { $("config").value = ""; later(); });
  const explainLater = debounce(explainLog, 400);
  $("log").addEventListener("input", explainLater);
  $("log-gpu").addEventListener("change", explainLater);
  update();
}

start().catch((e) => setError(e.message));
