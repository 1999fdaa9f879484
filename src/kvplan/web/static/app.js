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

// an answer's JSON (its text with `text`: kvplan fit --emit k8s's YAML); an error answer's one line thrown
async function api(path, body, text = false) {
  const init = body === undefined ? {} : {
    // X-Kvplan-Page: errors name the page's fields ("GPUs to compare"), not the CLI's flags (--gpu)
    method: "POST", headers: { "Content-Type": "application/json", "X-Kvplan-Page": "1" },
    body: restoreBare(JSON.stringify(body)) };
  const response = await fetch(path, init);
  if (text && response.ok) return response.text();
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

// explicit dimensions (kvplan plan --layers / --hidden / --params ...): null when none is filled
function dims() {
  const ids = ["dim-layers", "dim-hidden", "dim-params", "dim-heads", "dim-kv-heads", "dim-head-dim", "dim-vocab"];
  if (!ids.some((id) => $(id).value.trim())) return null;
  const params = optText("dim-params");
  const out = compact({ layers: optInt("dim-layers", "layers"), hidden: optInt("dim-hidden", "d_model"), params,
                        heads: optInt("dim-heads", "attention heads"), kv_heads: optInt("dim-kv-heads", "KV heads"),
                        head_dim: optInt("dim-head-dim", "head dimension"), vocab: optInt("dim-vocab", "vocabulary") });
  const missing = [["layers", "layers"], ["hidden", "d_model"], ["params", "parameters"]]
    .filter(([k]) => out[k] === undefined).map(([, label]) => label);
  if (missing.length) throw new Error(`explicit dimensions need ${missing.join(", ")} as well`);
  return out;
}

function modelInput() {
  const text = $("config").value.trim();
  const explicit = dims();
  if (explicit && text) throw new Error("use either a pasted config or explicit dimensions, not both");
  if (explicit) return { dims: explicit };
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

// a blank optional field is null; a filled one must be a whole number >= least
function optInt(id, label, least = 1) {
  const text = $(id).value.trim();
  if (!text) return null;
  const value = Number(text);
  if (!Number.isInteger(value) || value < least) throw new Error(`${label} must be a whole number >= ${least} (or blank)`);
  return value;
}

function optNumber(id, label, least = 0) {
  const text = $(id).value.trim();
  if (!text) return null;
  const value = Number(text);
  if (!(value >= least) || !Number.isFinite(value)) throw new Error(`${label} must be a number >= ${least} (or blank)`);
  return value;
}

const optText = (id) => $(id).value.trim() || null;

// the utilizations: blank is the engine's own default (null), as `kvplan plan` without --util
function utils() {
  const text = $("util").value.trim();
  if (!text) return null;
  const values = text.split(/[\s,]+/).filter(Boolean).map(Number);
  if (!values.every((u) => u > 0 && u <= 1)) throw new Error("memory utilization must be in (0, 1] (or blank: the engine's default)");
  return values;
}

// what `kvplan plan` takes beside the model, GPUs and workload: the engine settings and parallel layout
function settings() {
  const len = $("max-model-len").value.trim().toLowerCase();
  let maxModelLen = null;
  if (len === "auto") maxModelLen = "auto";
  else if (len) {
    maxModelLen = Number(len);
    if (!Number.isInteger(maxModelLen) || maxModelLen < 1)
      throw new Error("max model length must be a positive whole number, auto, or blank");
  }
  return { pp: positive("pp", "pipeline stages (PP)"), gpus: optInt("gpus-all", "GPUs in all"),
           dp_attention: positive("dp-attention", "data-parallel attention groups"),
           expert_parallel: $("expert-parallel").checked, engine_version: optText("engine-version"),
           quant: $("quant").value || null, max_model_len: maxModelLen,
           max_num_batched_tokens: optInt("max-num-batched-tokens", "max batched tokens"),
           max_num_seqs: optInt("max-num-seqs", "max running requests"),
           block_size: optInt("block-size", "KV block size"), enforce_eager: $("enforce-eager").checked,
           extensible_kv_cache: { on: true, off: false }[$("extensible-kv-cache").value] ?? null,
           entry_point: $("entry-point").value, reserve: optText("reserve"), kv_memory: optText("kv-memory"),
           gpu_memory: optText("gpu-memory"), swap_space: optNumber("swap-space", "swap space GiB"),
           kv_offloading_size: optNumber("kv-offloading-size", "KV offloading GiB"),
           kv_offloading_backend: $("kv-offloading-backend").value };
}

function inputs() {
  const gpus = [...$("gpu").selectedOptions].map((o) => o.value);
  $("gpu-chosen").textContent = gpus.length ? `chosen: ${gpus.join(", ")}` : "";
  if (!gpus.length) throw new Error("choose at least one GPU");
  return { source: modelInput(), gpus, tp: positive("tp", "GPUs per replica"), utils: utils(),
           engine: $("engine").value, dtype: $("dtype").value || null, kv_dtype: $("kv-dtype").value,
           seq: positive("seq", "tokens per request"), users: positive("users", "concurrent users"),
           settings: settings(), features: features(), fit: fitOptions(),
           loadOutput: positive("load-output", "output tokens per request"),
           loadPrompts: positive("load-prompts", "requests in the run"),
           loadRate: rate() };
}

// the arrival rate as `kvplan perf --rate` takes it: requests per second, or inf (all at once); blank: none
function rate() {
  const text = $("load-rate").value.trim().toLowerCase();
  if (!text) return null;
  if (text === "inf") return "inf";
  const value = Number(text);
  if (!(value > 0) || !Number.isFinite(value))
    throw new Error("arrival rate must be a number above 0, inf (all at once), or blank");
  return value;
}

// fit's options beside the workload, as the API (and the CLI) name them
function fitOptions() {
  const out = { max_gpus: positive("max-gpus", "max GPUs per replica"), rank_by: $("rank-by").value,
                allow_quant: $("allow-quant").checked, allow_fp8_kv: $("allow-fp8-kv").checked,
                allow_cross_node_tp: $("allow-cross-node-tp").checked, top: positive("top", "candidates shown"),
                allow_cpu_offload: optNumber("allow-cpu-offload", "CPU offload GiB to search") || 0,
                output: optInt("fit-output", "fit's output tokens per request"),
                price: ($("price").value || "").split(/[\s,]+/).filter(Boolean), ...targets() };
  return out;
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
  if (loras) {
    out.max_loras = loras;
    out.max_lora_rank = count("max-lora-rank", "LoRA max rank", 1);
    out.lora_dtype = $("lora-dtype").value;
  }
  const offload = Number($("cpu-offload-gb").value || 0);
  if (!(offload >= 0)) throw new Error("CPU offload GiB must be a number >= 0");
  if (offload) out.cpu_offload_gb = offload;
  const images = optInt("images-per-prompt", "images per prompt", 0);
  if (images !== null) out.images_per_prompt = images;
  const method = $("spec-method").value;
  if (method) {
    out.speculative_method = method;
    out.num_speculative_tokens = count("spec-tokens", "speculative tokens", 1);
    const draft = optText("draft-model");
    if (draft) out.draft_model = draft;
  }
  const config = optText("spec-config");
  if (config) out.speculative_config = config;
  return out;
}

// a request body without the fields left unset (the API's defaults apply, as the CLI's do)
function compact(body) {
  return Object.fromEntries(Object.entries(body).filter(([, v]) => v !== null && v !== undefined));
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

// a launch line as <code>: each flag with its value kept on one line (a line breaks only between flags), one
// line per node as the command gives them; its text is the command's, character for character
function commandCode(command) {
  const code = document.createElement("code");
  code.className = "command";
  command.split("\n").forEach((line, i) => {
    if (i) code.append("\n");
    line.split(/ (?=--)/).forEach((part, j) => {
      if (j) code.append(" ");
      const span = document.createElement("span");
      span.className = "flag";
      span.textContent = part;
      code.appendChild(span);
    });
  });
  return code;
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
    cell(row, String(s.util)).dataset.field = "util";
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
    `of KV per GPU (TP ${plan.deployment.tp}, PP ${plan.deployment.pp}, ${plan.deployment.replicas} ` +
    `replica(s) over ${plan.deployment.gpus} GPUs, engine ${plan.deployment.engine}).`;
  // the launch line per GPU, as `kvplan plan` prints it
  const launches = $("launch");
  clear(launches);
  for (const s of plan.scenarios.filter((x) => x.launch_command)) {
    const li = document.createElement("li");
    li.dataset.gpu = s.gpu;
    const code = commandCode(s.launch_command);
    const button = document.createElement("button");
    button.type = "button";
    button.className = "copy";
    button.textContent = "copy";
    button.setAttribute("aria-label", `copy the launch line for ${s.gpu}`);
    button.addEventListener("click", () => copy(s.launch_command, button));
    li.append(`${s.gpu}: `, code, " ", button);
    launches.appendChild(li);
  }
}

// the memory bars: the 900-unit drawing scaled to the column on a wide screen; on a narrow one drawn at the
// column's own width in CSS pixels (its text at full size), each GPU's label and total above its bar and the
// legend and any warning wrapped onto lines
const NARROW_MEMORY = 700;
let memoryPlan = null, memoryWidth = 0;

function textWidth(el) {
  const w = el.getComputedTextLength ? el.getComputedTextLength() : 0;
  return w > 0 ? w : el.textContent.length * 6.5;
}

// words as <text> lines no wider than `width` from (x, y) on, `step` apart; the y after them
function wrapText(svg, words, x, y, width, step, attrs = {}) {
  let line = svgEl(svg, "text", { x, y, ...attrs }, "");
  for (const word of words.split(" ")) {
    const before = line.textContent;
    line.textContent = before ? `${before} ${word}` : word;
    if (before && textWidth(line) > width) {
      line.textContent = before;
      y += step;
      line = svgEl(svg, "text", { x, y, ...attrs }, word);
    }
  }
  return y + step;
}

function showMemory(plan) {
  memoryPlan = plan;
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
  const labels = [...new Set(rows.flatMap((r) => r.parts.map(([l]) => l)))];
  const column = svg.parentNode.clientWidth;
  const narrow = column > 0 && column < NARROW_MEMORY;
  memoryWidth = narrow ? column : 900;
  svg.classList.toggle("narrow", narrow);
  const view = memoryWidth;
  svg.setAttribute("width", String(view));
  svg.setAttribute("viewBox", `0 0 ${view} 10`);  // the height follows once drawn
  const left = narrow ? 0 : 110, width = narrow ? view - 8 : 680, barH = narrow ? 18 : 22, gap = 14;
  const shortText = (r) => `KV pool short by ${gib(r.short)}: the weights and overheads exceed the budget`;
  const bar = (r, y) => {
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
    return tx;
  };
  let bottom;
  if (narrow) {
    let y = 14;
    for (const r of rows) {
      svgEl(svg, "text", { x: 0, y }, `${r.label}: ${gib(r.total)}`);
      bar(r, y + 7);
      y += 7 + barH + 18;
      if (r.short) y = wrapText(svg, shortText(r), 0, y - 2, view, 15, { fill: "#b00020", "data-short": "" }) + 4;
    }
    bottom = y - 4;
  } else {
    rows.forEach((r, i) => {
      const y = 10 + i * (barH + gap);
      svgEl(svg, "text", { x: 0, y: y + 15 }, r.label);
      const tx = bar(r, y);
      svgEl(svg, "text", { x: Math.min(tx + 4, left + width + 4), y: y + 15 }, gib(r.total));
      if (r.short) svgEl(svg, "text", { x: left, y: y + barH + 11, fill: "#b00020", "data-short": "" }, shortText(r));
    });
    bottom = rows.length * (barH + gap) + 22;
  }
  // the legend, flowed onto as many lines as the width needs
  let lx = left, ly = bottom;
  for (const label of labels) {
    const swatch = svgEl(svg, "rect", { x: lx, y: ly - 9, width: 10, height: 10,
                                        fill: COLORS[labels.indexOf(label) % COLORS.length] });
    const text = svgEl(svg, "text", { x: lx + 14, y: ly }, label);
    if (lx > left && lx + 14 + textWidth(text) > view) {
      lx = left;
      ly += 18;
      swatch.setAttribute("x", lx);
      swatch.setAttribute("y", ly - 9);
      text.setAttribute("x", lx + 14);
      text.setAttribute("y", ly);
    }
    lx += 14 + textWidth(text) + 16;
  }
  const height = ly + 18;
  svg.setAttribute("height", String(height));
  svg.setAttribute("viewBox", `0 0 ${view} ${height}`);
}

// log-axis ticks labelled at round values only: 1, 2 and 5 times a power of ten
function roundTick(value) {
  if (!(value > 0)) return "";
  const mantissa = value / 10 ** Math.floor(Math.log10(value) + 1e-9);
  const m = Math.round(mantissa);
  return Math.abs(mantissa - m) < 1e-6 && [1, 2, 5].includes(m) ? int(value) : "";
}

let chart = null;

// the concurrency series (POST /api/concurrency) drawn by Chart.js (vendored: static/vendor/chartjs)
function showChart(series) {
  const labels = Object.keys(series.series);
  const xs = series.lengths;
  const caps = Object.entries(series.caps || {}).filter(([, n]) => n);
  const capped = [];
  const datasets = [];
  labels.forEach((label, i) => {
    const color = COLORS[i % COLORS.length];
    const points = (ys) => xs.map((x, j) => ({ x, y: ys[j] })).filter((p) => p.y > 0);
    const line = { borderColor: color, backgroundColor: color, borderWidth: 2, pointRadius: 0, pointHitRadius: 6,
                   fill: false, series: label };
    datasets.push({ ...line, label: `${label} kvplan`, kind: "kvplan", data: points(series.series[label]) });
    datasets.push({ ...line, label: `${label} article`, kind: "article", borderDash: [6, 4],
                    data: points(series.naive[label]) });
    const cap = series.caps[label];
    if (cap && xs.length) {
      datasets.push({ ...line, label: `${label} max_num_seqs ${int(cap)}`, kind: "cap", borderWidth: 1.5,
                      borderDash: [2, 3], data: [{ x: xs[0], y: cap }, { x: xs[xs.length - 1], y: cap }] });
      const over = xs.filter((x, j) => series.series[label][j] > cap);
      if (over.length) capped.push(`${label} is capped at ${int(cap)} running requests up to ` +
                                   `${int(over[over.length - 1])} tokens per request`);
    }
  });
  $("chart-caps").textContent = (caps.length ? "The engine runs at most " +
    caps.map(([label, n]) => `${int(n)} requests at once on ${label}`).join(", ") +
    " (max_num_seqs), as the verdict table counts them" : "") +
    (capped.length ? `: ${capped.join("; ")} (the solid line above the dotted one is what the KV cache holds, ` +
                     "not what runs)." : (caps.length ? "; no series reaches its cap." : ""));
  showChartTable(series);
  const any = datasets.some((d) => d.kind !== "cap" && d.data.length);
  const canvas = $("chart");
  canvas.setAttribute("aria-label", any ? `max concurrent requests against tokens per request (log-log) for ` +
    `${labels.join(", ")}; the numbers are in the table below the chart` : "nothing fits: no request of any length");
  if (!any) datasets.length = 0;
  if (chart) {
    chart.data.datasets = datasets;
    chart.update();
    return;
  }
  const axis = (title) => ({ type: "logarithmic", title: { display: true, text: title, color: "#333" },
                             ticks: { autoSkip: false, maxRotation: 0, color: "#333", callback: roundTick },
                             grid: { color: (c) => (c.tick && roundTick(c.tick.value) ? "#ddd" : "#f3f3f3") } });
  chart = new Chart(canvas, {
    type: "line",
    data: { datasets },
    options: {
      responsive: true, maintainAspectRatio: false, animation: false, parsing: false,
      interaction: { mode: "nearest", intersect: false },
      // requests are whole numbers: the y axis starts at one
      scales: { x: axis("tokens per request (log scale)"), y: { ...axis("concurrent requests (log scale)"), min: 1 } },
      plugins: {
        // each entry a short line in its series' colour and dash (solid kvplan, dashed article, dotted cap)
        legend: { position: "bottom", labels: { usePointStyle: true, pointStyle: "line", pointStyleWidth: 32,
          color: "#333", generateLabels: (c) => Chart.defaults.plugins.legend.labels.generateLabels(c).map((item) =>
            ({ ...item, lineDash: c.data.datasets[item.datasetIndex].borderDash || [],
               strokeStyle: c.data.datasets[item.datasetIndex].borderColor })) } },
        tooltip: { callbacks: {
          title: (items) => items.length ? `${int(items[0].parsed.x)} tokens per request` : "",
          label: (item) => `${item.dataset.label}: ${int(item.parsed.y)} requests` } },
      },
    },
  });
}

function showChartTable(series) {
  const table = $("chart-table");
  clear(table.tHead);
  clear(table.tBodies[0]);
  const labels = Object.keys(series.series);
  const head = table.tHead.insertRow();
  for (const h of ["tokens per request", ...labels.flatMap((l) => [`${l} kvplan`, `${l} article`])]) {
    const th = document.createElement("th");
    th.scope = "col";
    th.textContent = h;
    head.appendChild(th);
  }
  series.lengths.forEach((x, j) => {
    const row = table.tBodies[0].insertRow();
    cell(row, int(x));
    for (const l of labels) { cell(row, int(series.series[l][j])); cell(row, int(series.naive[l][j])); }
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
    const code = commandCode(c.command);
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

// kvplan perf's static estimate (POST /api/speed): its figures as the CLI prints them
function showSpeed(speed) {
  const body = $("speed").tBodies[0];
  clear(body);
  $("speed-note").textContent = "";
  if (speed.error) { $("speed-summary").textContent = `not estimated: ${speed.error}`; return; }
  const d = speed.decode, p = speed.prefill, m = speed.memory;
  const rows = [["decode step (ms)", "step_ms", (d.step_seconds * 1000).toFixed(2)],
                ["tok/s per user", "tokens_per_sec_per_user", d.tokens_per_sec_per_user.toFixed(1)],
                ["tok/s in all", "tokens_per_sec_total", d.tokens_per_sec_total.toFixed(1)],
                ["decode bound", "decode_bound", d.bound],
                ["time to first token of one prompt (s)", "ttft_seconds", p.ttft_seconds.toFixed(3)],
                ["prefill bound", "prefill_bound", p.bound],
                ["the batch fits", "fits", m.fits ? "yes" : "no"],
                [`most requests at the length (${m.engine})`, "max_batch", int(m.max_batch)]];
  for (const [label, field, value] of rows) {
    const row = body.insertRow();
    row.dataset.field = field;
    cell(row, label);
    cell(row, value, field === "fits" ? (m.fits ? "yes" : "no") : "");
  }
  $("speed-summary").textContent = `${speed.model} on ${speed.tp * speed.pp} x ${speed.gpu} (TP ${speed.tp}, ` +
    `PP ${speed.pp}): batch ${int(speed.batch)} at ${int(speed.context)} tokens, a prompt of ${int(speed.prompt)} ` +
    "tokens." + (m.fits ? "" : ` The batch does not fit (${m.start_error || `the KV cache holds ` +
    `${int(m.max_batch)} requests`}): the speeds assume it did.`);
  $("speed-note").textContent = speed.assumptions.join(" ");
}

// kvplan fit --emit k8s for the page's search (POST /api/fit with emit), asked only while its box is open
const MANIFEST = { body: null, asked: 0 };

async function showManifest() {
  const mine = ++MANIFEST.asked;
  const say = (text, error) => {
    if (mine !== MANIFEST.asked) return;
    $("manifest").textContent = text;
    $("manifest-error").hidden = !error;
    $("manifest-error").textContent = error ? `kvplan fit --emit k8s: ${error}` : "";
    $("manifest-box").dataset.ready = String(mine);
  };
  if (!MANIFEST.body) { say("", "explicit dimensions give the verdict only: pick a catalog model or paste a config.json"); return; }
  try { say(await api("/api/fit", MANIFEST.body, true), ""); } catch (e) { say("", e.message); }
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

function setFitError(message) {
  $("fit-error").hidden = !message;
  $("fit-error").textContent = message ? `kvplan fit: ${message}` : "";
}

async function update() {
  const mine = ++generation;
  let x;
  try { x = inputs(); } catch (e) { setError(e.message); return; }
  setError("");
  $("status").textContent = "computing...";
  const engine = ENGINES.byName[x.engine] || {};
  const st = x.settings;
  // the page's default max_model_len is the tokens per request (for engines that take one): the length the
  // verdict is asked about; a typed one (or auto) goes as typed
  const maxModelLen = st.max_model_len ?? (engine.max_model_len_from_seq ? x.seq : null);
  const plan = compact({ ...x.source, gpu: x.gpus, tp: x.tp, util: x.utils, engine: x.engine, dtype: x.dtype,
                         kv_dtype: x.kv_dtype, seq: x.seq, batch: x.users, ...st, max_model_len: maxModelLen,
                         explain: true, ...x.features });
  const spec = x.features.speculative_method ?
    { speculative_method: x.features.speculative_method, num_speculative_tokens: x.features.num_speculative_tokens,
      ...(x.features.draft_model ? { draft_model: x.features.draft_model } : {}) } :
    {};
  // the features fit sizes every candidate with, as plan does (POST /api/fit takes these names)
  for (const key of ["shared_prefix", "max_loras", "max_lora_rank", "lora_dtype", "images_per_prompt"])
    if (key in x.features) spec[key] = x.features[key];
  const fitEngine = engine.fit ? x.engine : ENGINES.default;
  const { output: fitOutput, ...fitRest } = x.fit;
  const workload = fitOutput ? { prompt: Math.max(1, x.seq - fitOutput), output: fitOutput } : { seq: x.seq };
  const fitBody = { ...x.source, users: x.users, ...workload, gpu: x.gpus, engine: fitEngine, ...fitRest, ...spec };
  const output = Math.min(x.loadOutput, Math.max(1, x.seq - 1));
  const loadBody = compact({ ...x.source, gpu: x.gpus[0], tp: x.tp, pp: st.pp, util: x.utils ? x.utils[0] : null,
    engine: x.engine, engine_version: st.engine_version, dtype: x.dtype, quant: st.quant, kv_dtype: x.kv_dtype,
    prompt: Math.max(1, x.seq - output), output, num_prompts: x.loadPrompts,
    concurrency: x.loadRate ? null : x.users, rate: x.loadRate, max_model_len: typeof st.max_model_len === "number" ?
      st.max_model_len : null, max_num_batched_tokens: st.max_num_batched_tokens, max_num_seqs: st.max_num_seqs,
    dp_attention: st.dp_attention, expert_parallel: st.expert_parallel, gpus: st.gpus,
    cpu_offload_gb: x.features.cpu_offload_gb || 0 });
  // the static estimate (kvplan perf --batch --prompt --context) of the same replica
  const speedBody = compact({ ...x.source, gpu: x.gpus[0], tp: x.tp, pp: st.pp, dtype: x.dtype, quant: st.quant,
    kv_dtype: x.kv_dtype, dp_attention: st.dp_attention, expert_parallel: st.expert_parallel, batch: x.users,
    prompt: Math.max(1, x.seq - output), context: x.seq, cpu_offload_gb: x.features.cpu_offload_gb || 0 });
  // explicit dimensions are plan's alone (as on the CLI): the search, the chart and the speeds need a config
  const dimsOnly = "dims" in x.source;
  const needs = { error: "explicit dimensions give the verdict only: pick a catalog model or paste a config.json" };
  const load = dimsOnly ? Promise.resolve(needs) : api("/api/perf", loadBody).catch((e) => ({ error: e.message }));
  const speed = dimsOnly ? Promise.resolve(needs) : api("/api/speed", speedBody).catch((e) => ({ error: e.message }));
  MANIFEST.body = dimsOnly ? null : { ...fitBody, emit: "k8s" };
  const manifest = $("manifest-box").open ? showManifest() : Promise.resolve();
  const fit = dimsOnly ? Promise.resolve(needs) : api("/api/fit", fitBody).catch((e) => ({ error: e.message }));
  const noSeries = { lengths: [], series: {}, naive: {}, caps: {} };
  try {
    const [p, series] = await Promise.all([
      api("/api/plan", plan),
      dimsOnly ? noSeries : api("/api/concurrency", compact({ ...x.source, gpu: x.gpus, util: x.utils, tp: x.tp,
                                                              engine: x.engine, dtype: x.dtype, kv_dtype: x.kv_dtype })),
    ]);
    const [f, l, sp] = [await fit, await load, await speed];
    await manifest;
    if (mine !== generation) return;  // a newer input change is on its way
    showScenarios(p, x);
    showMemory(p);
    showChart(series);
    if (f.error) { setFitError(f.error); clear($("fit").tBodies[0]); $("fit-note").textContent = ""; }
    else { setFitError(""); showFit(f); }
    showLoad(l);
    showSpeed(sp);
    showDerivation(p.derivation || []);
    $("status").textContent = "";
    document.body.dataset.ready = String(mine);
  } catch (e) {
    if (mine !== generation) return;
    setError(e.message);
    $("status").textContent = "";
  }
}

const fmt = (v) => (v === null || v === undefined ? "-" :
  Number(v).toLocaleString("en-US", { maximumFractionDigits: 2 }));

function explainBody() {
  return compact({ log: $("log").value, model: $("log-model").value || null, gpu: $("log-gpu").value || null,
                   util: optNumber("log-util", "the log's utilization", Number.MIN_VALUE),
                   tp: optInt("log-tp", "the log's TP"),
                   target_concurrency: optInt("target-concurrency", "target concurrency"),
                   target_len: optInt("target-len", "target context length") });
}

const FIGURES = [["kv_pool", "KV pool GiB"], ["weights", "weights GiB"], ["kv_tokens", "KV tokens"],
                 ["max_concurrency", "max concurrency"]];

async function explainLog() {
  const mine = ++explained;
  const out = $("explain-out");
  if (!$("log").value.trim()) { clear(out); return; }
  try {
    const d = await api("/api/explain", explainBody());
    if (mine !== explained) return;  // a newer log or input is on its way
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
      cell(row, int(Math.round(v * 100) / 100)).dataset.value = String(v);
    }
    out.appendChild(table);
    if (d.failure) {
      const p = document.createElement("p");
      p.id = "explain-failure";
      p.className = "no";
      p.textContent = `${d.failure.kind}: ${d.failure.what}` + (d.failure.fix ? ` Smallest fix: ${d.failure.fix}` : "");
      out.appendChild(p);
    }
    for (const line of [...d.flags, ...d.assumptions]) {
      const p = document.createElement("p");
      p.className = "note";
      p.textContent = line;
      out.appendChild(p);
    }
    showSuggestions(out, d.suggestions);
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

// "what each change would give": every suggested flag change re-planned (kvplan explain's table)
function showSuggestions(out, suggestions) {
  if (!suggestions.length) return;
  const h = document.createElement("h3");
  h.textContent = "What each change would give";
  out.appendChild(h);
  const box = document.createElement("div");
  box.className = "scroll";
  box.tabIndex = 0;
  box.setAttribute("role", "region");
  box.setAttribute("aria-label", "suggested changes table");
  const table = document.createElement("table");
  table.id = "suggestions";
  const head = table.createTHead().insertRow();
  for (const text of ["change", ...FIGURES.map(([, label]) => label), "meets the target", "engine starts"]) {
    const th = document.createElement("th");
    th.scope = "col";
    th.textContent = text;
    head.appendChild(th);
  }
  const body = table.createTBody();
  for (const s of suggestions) {
    const row = body.insertRow();
    row.dataset.change = s.change;
    cell(row, s.change, "change");
    if (s.error) {
      const td = cell(row, `not re-planned: ${s.error}`, "change");
      td.colSpan = FIGURES.length + 2;
      continue;
    }
    for (const [key] of FIGURES) {
      const td = cell(row, fmt(s.predicted[key]));
      td.dataset.field = key;
      td.dataset.value = String(s.predicted[key]);
    }
    const yesNo = (v) => (v === null || v === undefined ? "-" : v ? "yes" : "no");
    cell(row, yesNo(s.meets_target), s.meets_target ? "yes" : (s.meets_target === false ? "no" : "")).dataset.field =
      "meets_target";
    cell(row, yesNo(s.starts), s.starts === false ? "no" : "").dataset.field = "starts";
  }
  box.appendChild(table);
  out.appendChild(box);
}

// the form's inputs live in the URL's query (a pasted config or log does not): a shared link restores them
const SHARED = ["model", "dim-layers", "dim-hidden", "dim-params", "dim-heads", "dim-kv-heads", "dim-head-dim",
                "dim-vocab", "gpu", "tp", "util", "engine", "dtype", "kv-dtype", "seq", "users", "pp", "gpus-all",
                "dp-attention", "expert-parallel", "engine-version", "quant", "max-model-len",
                "max-num-batched-tokens", "max-num-seqs", "block-size", "enforce-eager", "extensible-kv-cache",
                "entry-point", "reserve",
                "kv-memory", "gpu-memory", "swap-space", "kv-offloading-size", "kv-offloading-backend",
                "images-per-prompt", "allow-cpu-offload", "shared-prefix", "max-loras",
                "max-lora-rank", "lora-dtype", "cpu-offload-gb", "spec-method", "spec-tokens", "draft-model",
                "spec-config", "max-gpus", "rank-by", "allow-quant", "allow-fp8-kv", "allow-cross-node-tp",
                "min-tps", "max-ttft", "load-stat", "fit-output", "price", "top", "load-output", "load-prompts",
                "load-rate"];

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
    // a restored setting inside a collapsed group opens the group, so the link shows what it changed
    const group = el.closest("details");
    if (group && (el.type === "checkbox" ? el.checked : el.value !== el.defaultValue)) group.open = true;
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
  for (const m of models) {
    $("model").add(new Option(`${m.alias} (${m.hf_id})`, m.alias, false, m.alias === "falcon-7b"));
    $("log-model").add(new Option(`${m.alias} (${m.hf_id})`, m.alias));
  }
  for (const g of gpus) {
    $("gpu").add(new Option(`${g.alias} - ${g.name}`, g.alias, false, ["a10g", "h100"].includes(g.alias)));
    $("log-gpu").add(new Option(`${g.alias} - ${g.name}`, g.alias));
  }
  restoreState();
  const later = debounce(() => { saveState(); update(); }, 250);
  for (const kind of ["input", "change"]) $("inputs").addEventListener(kind, (e) => {
    if (e.target.id !== "config-file") later();
  });
  for (const form of ["inputs", "explain-inputs"]) $(form).addEventListener("submit", (e) => e.preventDefault());
  $("config-file").addEventListener("change", async () => {
    const file = $("config-file").files[0];
    if (file) { $("config").value = await file.text(); later(); }
  });
  $("config-clear").addEventListener("click", () => { $("config").value = ""; later(); });
  $("manifest-box").addEventListener("toggle", () => { if ($("manifest-box").open) showManifest(); });
  $("manifest-copy").addEventListener("click", () => copy($("manifest").textContent, $("manifest-copy")));
  // the memory bars follow the column's width (narrow: drawn at it, wide: the scaled drawing)
  window.addEventListener("resize", debounce(() => {
    if (!memoryPlan) return;
    const column = $("memory").parentNode.clientWidth;
    if ((column < NARROW_MEMORY ? column : 900) !== memoryWidth) showMemory(memoryPlan);
  }, 150));
  const explainLater = debounce(explainLog, 400);
  for (const kind of ["input", "change"]) $("explain-inputs").addEventListener(kind, explainLater);
  update();
}

start().catch((e) => setError(e.message));
