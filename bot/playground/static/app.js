// Stylebot playground: the page speaks the same commands as the chat adapters.
// The command line is the request; the controls below it are another way to write it.
// The server parses every command (bot/commands.py), so this file never re-implements parsing.
"use strict";

// What each range of the sd transformation strength does, shown under its slider.
const RANGE_NOTES = {
  "sd.strength": [
    [0.25, "Subtle: colours and surface texture change; the composition stays exactly as it is."],
    [0.5, "Moderate: the style is plain to see, while shapes and layout hold."],
    [0.75, "Strong: the prompt redraws details and may change what objects look like."],
    [1.01, "Reimagined: the prompt leads and little of the original picture remains."],
  ],
  "gatys.style_weight": [
    [3e5, "Content first: the photo stays crisp; the style tints and textures it."],
    [3e6, "Balanced: the style's brushwork covers the photo, whose shapes still read clearly."],
    [Infinity, "Style first: the painting's texture takes over and fine detail dissolves."],
  ],
};

// Where a slider is most useful when the declared range is far wider; typed values may still
// go anywhere the option allows (the slider then widens to include them).
const SLIDER_RANGES = {
  "gatys.style_weight": [1e5, 1e7],
};

const state = {
  config: {}, methods: [], byName: {},
  method: "hub", options: {}, prompt: "", preset: null, presetData: null, blend: null,
  content: null, styles: [], mask: null,
  job: null, source: null, running: false, lastRunText: null, results: [],
  draft: null,  // quality=refine: the draft's job while gatys refines it (Cancel stops refining)
};

const $ = (sel) => document.querySelector(sel);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined) node.append(child);
  }
  return node;
}

// -- talking to the server --------------------------------------------------------------

async function api(path, options = {}) {
  let response;
  try {
    response = await fetch(path, options);
  } catch (err) {
    throw new Error("Cannot reach Stylebot; is `stylebot run` still running?");
  }
  let body = null;
  try { body = await response.json(); } catch (err) { body = null; }
  if (!response.ok) {
    throw new Error((body && body.error) || `The server answered ${response.status}.`);
  }
  return body;
}

// -- the command line, written from the controls ------------------------------------------

function quote(value) {
  const text = String(value);
  if (text && !/[\s"'\u201c\u201d\u2018\u2019\u00ab\u00bb\\]/.test(text)) return text;
  return '"' + text.replace(/\\/g, "\\\\").replace(/"/g, '\\"') + '"';
}

function commandText() {
  const words = ["/stylize"];
  if (state.preset) words.push("preset:" + quote(state.preset));
  else words.push("method:" + quote(state.method));
  for (const [key, value] of Object.entries(state.options)) words.push(`${key}:${quote(value)}`);
  if (state.blend) words.push("blend:" + state.blend.join(","));
  const method = state.byName[state.method];
  if (state.prompt && method && method.needs_prompt) words.push("prompt:" + quote(state.prompt));
  return words.join(" ");
}

function writeCommand() {
  $("#command").value = commandText();
  hint(null);
}

function hint(error) {
  const node = $("#command-hint");
  if (error) {
    node.textContent = error;
    node.classList.add("error");
  } else if (node.classList.contains("error")) {
    node.classList.remove("error");
    node.innerHTML = node.dataset.original;
  }
}

let parseTimer = null;
function onCommandTyped() {
  clearTimeout(parseTimer);
  parseTimer = setTimeout(readCommand, 300);
}

// Set the controls from what was typed (the server's parser decides what it means).
async function readCommand() {
  const text = $("#command").value.trim();
  if (!text) return;
  try {
    const { parsed } = await api("/api/parse", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ command: text }),
    });
    hint(null);
    if (parsed.name !== "stylize") return;
    if (parsed.preset && parsed.preset !== state.preset) await usePreset(parsed.preset, false);
    if (!parsed.preset) clearPreset(false);
    if (parsed.method && state.byName[parsed.method]) state.method = parsed.method;
    state.options = parsed.options;
    state.prompt = parsed.prompt || "";
    state.blend = parsed.blend;
    renderMethod();
  } catch (err) {
    hint(err.message);
  }
}

// -- methods and their controls -----------------------------------------------------------

function renderMethodPicker() {
  const select = $("#method");
  select.replaceChildren(...state.methods.map((m) =>
    el("option", { value: m.name }, `${m.name} \u2013 ${m.title}${m.ready ? "" : ` (${m.status || "weights missing"})`}`)));
  select.value = state.method;
}

function currentValue(option) {
  if (option.name in state.options) return state.options[option.name];
  if (state.presetData && option.name in state.presetData.options) return state.presetData.options[option.name];
  return option.default;
}

function formatNumber(option, value) {
  const v = Number(value);
  if (option.log_scale) return v.toExponential(2).replace("e+", "e");
  if (option.type === "int") return String(Math.round(v));
  const step = option.step || 0.01;
  const decimals = Math.max(0, Math.min(6, Math.ceil(-Math.log10(step))));
  return v.toFixed(decimals);
}

function rangeNote(method, option, value) {
  const notes = RANGE_NOTES[`${method}.${option.name}`];
  if (!notes || value === null || value === undefined) return null;
  const v = Number(value);
  return notes.find(([upTo]) => v < upTo)[1];
}

function setOption(name, raw) {
  if (raw === null) delete state.options[name];
  else state.options[name] = raw;
  writeCommand();
}

function optionControl(method, option) {
  const id = `opt-${option.name}`;
  const value = currentValue(option);
  const shown = el("output", { id: `${id}-value`, for: id });
  const reset = el("button", {
    type: "button", class: "reset", title: "back to the default",
    onclick: () => { setOption(option.name, null); renderOptions(); },
  }, "\u21ba");
  const row = el("div", { class: "option", "data-option": option.name });
  const label = el("label", { for: id, class: "label", title: option.help }, option.name.replace(/_/g, " "));
  let control;
  let note = null;

  if ((option.type === "float" || option.type === "int") && option.min !== null && option.max !== null
      && option.name !== "seed") {
    let min = option.min;
    let max = option.name === "size" ? Math.min(option.max, state.config.max_side || option.max) : option.max;
    const preferred = SLIDER_RANGES[`${method.name}.${option.name}`];
    if (preferred) {
      min = Math.max(min, preferred[0]);
      max = Math.min(max, preferred[1]);
      if (value !== null && value !== undefined && Number.isFinite(Number(value))) {
        min = Math.max(option.min, Math.min(min, Number(value)));
        max = Math.min(option.max, Math.max(max, Number(value)));
      }
    }
    const toSlider = (v) => (option.log_scale ? Math.log10(v) : v);
    const fromSlider = (s) => (option.log_scale ? Math.pow(10, s) : s);
    const unset = value === null || value === undefined;
    // An option without a default means "the server decides": size is the server's cap.
    const start = unset ? (option.name === "size" ? max : min) : Number(value);
    control = el("input", {
      id, type: "range",
      min: toSlider(min), max: toSlider(max),
      step: option.log_scale ? 0.01 : (option.step || (option.type === "int" ? 1 : 0.01)),
      value: toSlider(start), "data-log": option.log_scale ? "1" : null,
    });
    shown.textContent = unset ? (option.name === "size" ? `auto (${max})` : "default") : formatNumber(option, value);
    note = el("p", { class: "range-note", id: `note-${option.name}` });
    const showNote = (v) => {
      const text = rangeNote(method.name, option, v);
      note.textContent = text || (option.log_scale ? `Log scale, ${formatNumber(option, min)} to ${formatNumber(option, max)}.` : "");
      note.hidden = !note.textContent;
    };
    showNote(value);
    control.addEventListener("input", () => {
      const v = formatNumber(option, fromSlider(Number(control.value)));
      shown.textContent = v;
      showNote(v);
      setOption(option.name, v);
    });
    control.addEventListener("change", () => sliderReleased());
  } else if (option.type === "bool") {
    control = el("input", { id, type: "checkbox", checked: value === true || value === "true" });
    control.addEventListener("change", () => setOption(option.name, control.checked ? "true" : "false"));
  } else if (option.type === "choice") {
    control = el("select", { id }, ...(option.choices || []).map((c) => el("option", { value: c }, c)));
    control.value = value;
    control.addEventListener("change", () => setOption(option.name, control.value));
  } else if (option.name === "seed") {
    control = el("input", { id, type: "number", min: option.min, max: option.max, placeholder: "random",
      value: value === null || value === undefined ? null : value });
    control.addEventListener("change", () => setOption(option.name, control.value === "" ? null : control.value));
  } else {
    control = el("input", { id, type: option.type === "str" ? "text" : "number",
      value: value === null || value === undefined ? null : value, min: option.min, max: option.max,
      step: option.step || "any" });
    control.addEventListener("change", () => setOption(option.name, control.value === "" ? null : control.value));
  }
  row.append(label, control, shown, reset);
  row.append(el("p", { class: "option-help" }, option.help));
  if (note) row.append(note);
  return row;
}

function renderOptions() {
  const method = state.byName[state.method];
  const box = $("#options");
  box.replaceChildren(...(method ? method.options.map((o) => optionControl(method, o)) : []));
}

function renderMethod() {
  const method = state.byName[state.method];
  if (!method) return;
  $("#method").value = method.name;
  $("#method-summary").textContent = method.summary;
  const warning = $("#method-warning");
  const missing = Object.entries(method.weights || {}).filter(([, where]) => where === "missing").map(([w]) => w);
  warning.hidden = method.ready;
  warning.textContent = method.ready ? "" : method.status === "needs a GPU"
    ? `${method.name} needs a GPU and this server has none.`
    : `Weights missing (${missing.join(", ")}): run \`stylebot weights fetch ${method.name}\` first.`;
  $("#style-drop").hidden = method.max_styles === 0;
  $("#style-drop .drop-label").firstChild.textContent =
    method.max_styles > 1 ? `Style images (up to ${method.max_styles})` : "Style image";
  $("#mask-drop").hidden = !method.uses_mask;
  $("#prompt-field").hidden = !method.needs_prompt;
  $("#prompt").value = state.prompt;
  $("#quality-field").hidden = method.name !== "gatys";
  $("#quality").value = state.options.quality === "refine" ? "refine" : "";
  $("#reroll").title = hasSeed() ? "the same settings with a new random seed"
    : `${method.name} gives the same result every time, so there is nothing to re-roll`;
  renderOptions();
}

// -- images ------------------------------------------------------------------------------

function tooBig(file, what) {
  const limit = state.config.max_upload_bytes;
  if (limit && file.size > limit) {
    const mb = (n) => (n / (1024 * 1024)).toFixed(1) + " MB";
    return `The ${what} is ${mb(file.size)}; the limit is ${mb(limit)}.`;
  }
  return null;
}

// Clips (animated images, short videos) may be the content; styles and masks are pictures.
const isVideo = (file) => file.type.startsWith("video/");

function setImages(kind, files) {
  files = Array.from(files).filter((f) => f.type.startsWith("image/") || f.type === ""
                                    || (kind === "content" && isVideo(f)));
  if (!files.length) return;
  const what = { content: "content image", style: "style image", mask: "mask" }[kind];
  for (const f of files) {
    const problem = tooBig(f, what);
    if (problem) { showStatus("failed", problem); return; }
  }
  if (kind === "content") {
    state.content = files[0];
    showThumb($("#content-drop img"), files[0], $("#content-drop video"));
    showThumb($("#input-img"), files[0], $("#input-video"));
    $("#input-frame .empty").hidden = true;
  } else if (kind === "mask") {
    state.mask = files[0];
    showThumb($("#mask-drop img"), files[0]);
  } else {
    const max = (state.byName[state.method] || {}).max_styles || 1;
    state.styles = files.slice(0, Math.max(1, max));
    if (state.preset) clearPreset(true);
    renderStyles();
  }
}

// A picked file in its <img>, or for a video in the <video> beside it.
function showThumb(img, file, video = null) {
  const shown = video && isVideo(file) ? video : img;
  if (video) (shown === video ? img : video).hidden = true;
  if (shown.dataset.url) URL.revokeObjectURL(shown.dataset.url);
  shown.dataset.url = URL.createObjectURL(file);
  shown.src = shown.dataset.url;
  shown.hidden = false;
}

function renderStyles() {
  const box = $("#style-drop .thumbs");
  if (state.preset && state.presetData) {
    box.replaceChildren(...state.presetData.styles.map((url) => el("img", { src: url, alt: "preset style" })));
  } else {
    box.replaceChildren(...state.styles.map((f) => el("img", { src: URL.createObjectURL(f), alt: f.name })));
  }
}

function wireDrop(zone) {
  const kind = zone.dataset.kind;
  const input = zone.querySelector("input[type=file]");
  zone.addEventListener("click", () => input.click());
  zone.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); input.click(); } });
  input.addEventListener("change", () => setImages(kind, input.files));
  zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    setImages(kind, e.dataTransfer.files);
  });
}

// Images dropped on the command line attach like chat attachments: content first, then styles.
function wireCommandDrop() {
  const form = $("#command-form");
  form.addEventListener("dragover", (e) => { e.preventDefault(); form.classList.add("over"); });
  form.addEventListener("dragleave", () => form.classList.remove("over"));
  form.addEventListener("drop", (e) => {
    e.preventDefault();
    form.classList.remove("over");
    const files = Array.from(e.dataTransfer.files);
    if (!files.length) return;
    if (!state.content) setImages("content", [files.shift()]);
    if (files.length) setImages("style", files);
  });
}

// -- running -----------------------------------------------------------------------------

function formFor(text) {
  const form = new FormData();
  form.append("command", text);
  const method = state.byName[state.method] || {};
  if (state.content) form.append("content", state.content, state.content.name || "content.png");
  if (!state.preset && method.max_styles > 0) {
    for (const f of state.styles) form.append("style", f, f.name || "style.png");
  }
  if (method.uses_mask && state.mask) form.append("mask", state.mask, state.mask.name || "mask.png");
  return form;
}

async function runCommand(text) {
  text = (text || $("#command").value).trim();
  const restyles = !/^\/(preset|presets|cancel|queue|methods|help)\b/i.test(text);
  if (restyles && state.running && state.job) {
    await cancelJob(true);  // a new request replaces the one still running
  }
  let reply;
  try {
    reply = await api("/api/command", { method: "POST", body: formFor(text) });
  } catch (err) {
    if (restyles) retireResult();
    showStatus("failed", err.message);
    return;
  }
  if (reply.kind === "job") {
    retireResult();
    state.lastRunText = text;
    follow(reply);
  } else {
    showMessage(reply.message || "");
    if (String(reply.kind).startsWith("preset")) loadPresets();
  }
}

function follow(reply) {
  if (state.source) state.source.close();
  state.job = reply.job;
  state.draft = null;
  state.running = true;
  setRefining(false);
  $("#cancel").disabled = false;
  $("#reroll").disabled = true;
  showStatus("queued", `Job ${reply.job} sent (${reply.method}${reply.seed === null ? "" : `, seed ${reply.seed}`})\u2026`);
  setProgress(0, true);
  const source = new EventSource(reply.events);
  state.source = source;
  source.onmessage = (message) => {
    const event = JSON.parse(message.data);
    if (event.job !== state.job) return;
    onEvent(event);
    if (["done", "failed", "cancelled", "kept"].includes(event.type) && !event.refining) {
      source.close();
      if (state.source === source) state.source = null;
    }
  };
  source.onerror = () => {
    if (state.source !== source) return;
    source.close();
    state.source = null;
    if (state.running) {
      state.running = false;
      $("#cancel").disabled = true;
      showStatus("failed", "Lost the connection to Stylebot before the job finished.");
    }
  };
}

function onEvent(event) {
  if (["queued", "done", "failed", "cancelled"].includes(event.type)) pollHealth();
  // While gatys refines a draft, every line says so (the draft stays in view until replaced).
  const lead = state.draft ? "Draft shown. Refining with gatys: " : "";
  if (event.type === "queued") {
    showStatus("queued", lead + (event.position === 1 ? "Queued: next in line." : `Queued: position ${event.position}.`));
  } else if (event.type === "started") {
    showStatus("running", `${state.draft ? "Draft shown. Refining with gatys " : "Running "}on ${event.device}\u2026`);
    setProgress(0, true);
  } else if (event.type === "progress") {
    const pct = Math.round(event.fraction * 100);
    showStatus("running", lead + `${event.stage ? event.stage[0].toUpperCase() + event.stage.slice(1) : "Working"}: ${pct}%`);
    setProgress(event.fraction, true);
    if (event.preview) showResult(event.preview, true);
  } else if (event.type === "done") {
    state.running = false;
    const m = event.meta;
    const clip = m.clip;  // a clip result: frames and fps as served, and what fitting lowered
    showStatus("done", `Done in ${m.seconds.toFixed(1)} s on ${m.device}` +
      (clip ? `: ${clip.facts}${clip.note ? ", " + clip.note : ""}.` : "."));
    setProgress(1, false);
    showResult(`${event.result}?v=${event.job}`, false, Boolean(clip && clip.video));
    const link = $("#download");
    link.href = event.download;
    link.setAttribute("download", event.download_name || `stylebot-${m.method}-${event.job}.png`);
    link.hidden = false;
    $("#reroll").disabled = !hasSeed();
    $("#cancel").disabled = true;
    const opts = Object.entries(m.options).filter(([k, v]) => v !== null && k !== "seed")
      .map(([k, v]) => `${k} ${v}`).join(", ");
    const seed = hasSeed(m.method) ? ` \u00b7 seed ${m.seed}` : "";
    const frames = clip ? ` \u00b7 ${clip.facts}` : "";
    $("#meta").textContent = `${m.method}${seed} \u00b7 ${m.size[0]}\u00d7${m.size[1]}${frames}${opts ? " \u00b7 " + opts : ""}`;
    addRecent(event, m);
    if (event.refining) {  // quality=refine: this is the draft; gatys' refinement follows
      state.running = true;
      state.draft = { job: event.job, result: `${event.result}?v=${event.job}` };
      $("#cancel").disabled = false;
      setRefining(true);
      showStatus("running", `Draft in ${m.seconds.toFixed(1)} s. Refining with gatys\u2026`);
    } else {
      state.draft = null;
      setRefining(false);
    }
  } else if (event.type === "refining") {
    state.job = event.refinement;
  } else if (event.type === "kept") {
    state.running = false;
    $("#cancel").disabled = true;
    setRefining(false);
    setProgress(0, false);
    if (state.draft) showResult(state.draft.result, false);
    showStatus("done", event.reason);
  } else if (event.type === "failed") {
    state.running = false;
    $("#cancel").disabled = true;
    retireResult();
    setProgress(0, false);
    showStatus("failed", event.message);
  } else if (event.type === "cancelled") {
    state.running = false;
    $("#cancel").disabled = true;
    $("#reroll").disabled = !state.lastRunText || !hasSeed();
    setProgress(0, false);
    showStatus("cancelled", event.reason === "cancelled by the requester" ? "Cancelled." : event.reason);
  }
}

function showResult(src, preview, video = false) {
  const img = $("#result-img");
  const player = $("#result-video");
  (video ? img : player).hidden = true;
  if (video) {
    player.src = src;
    player.hidden = false;
  } else {
    img.src = src;
    img.hidden = false;
  }
  img.classList.toggle("preview", preview);
  $("#result-frame .empty").hidden = true;
  $("#result-frame").classList.remove("previous");
  $("#previous-label").hidden = true;
}

// A new job, a refusal or a failure: the image on show is no longer the current result, so
// it is greyed and labelled, and its Download, Re-roll and description go with it.
function retireResult() {
  const frame = $("#result-frame");
  if (($("#result-img").hidden && $("#result-video").hidden) || frame.classList.contains("previous")) return;
  frame.classList.add("previous");
  $("#previous-label").hidden = false;
  $("#download").hidden = true;
  $("#reroll").disabled = true;
  const meta = $("#meta");
  if (meta.textContent && !meta.textContent.startsWith("Previous result:")) {
    meta.textContent = `Previous result: ${meta.textContent}`;
  }
}

function addRecent(event, meta) {
  const video = Boolean(meta.clip && meta.clip.video);
  const thumb = el(video ? "video" : "img", { src: `${event.result}?v=${event.job}`, alt: `${meta.method} result`,
    title: `${meta.method}, seed ${meta.seed}`, muted: video, loop: video, autoplay: video,
    onclick: () => { showResult(`${event.result}?v=${event.job}`, false, video); $("#download").href = event.download; } });
  const box = $("#recent");
  box.prepend(thumb);
  while (box.children.length > 8) box.lastChild.remove();
}

function showStatus(kind, text) {
  const node = $("#status");
  node.className = `status ${kind}`;
  node.textContent = text;
}

function showMessage(text) {
  const box = $("#messages");
  box.textContent = text;
  box.hidden = !text;
}

function setProgress(fraction, visible) {
  $("#progress").hidden = !visible;
  $("#progress-bar").style.width = `${Math.round(fraction * 100)}%`;
}

// quality=refine: while gatys refines a draft, Cancel is "Stop refining" (the draft stays).
function setRefining(on) {
  $("#cancel").textContent = on ? "Stop refining" : "Cancel";
}

async function cancelJob(quiet) {
  if (!state.job) return;
  const job = state.job;
  try {
    if (state.draft && state.running) {
      await api(`/api/jobs/${state.draft.job}/stop`, { method: "POST" });
      return;
    }
    await api(`/api/jobs/${job}`, { method: "DELETE" });
  } catch (err) {
    if (!quiet) showStatus("failed", err.message);
  }
}

// A slider was let go: run again with the new value, as the seed's interactive demo did.
function sliderReleased() {
  if (!$("#live").checked || !state.lastRunText || !state.content) return;
  runCommand(commandText());
}

// Re-rolling only makes sense for methods whose result depends on a seed.
function hasSeed(name) {
  const method = state.byName[name || state.method];
  return Boolean(method && method.options.some((o) => o.name === "seed"));
}

function reroll() {
  if (!hasSeed()) return;
  state.options.seed = String(Math.floor(Math.random() * 2 ** 31));
  writeCommand();
  renderOptions();
  runCommand(commandText());
}

// -- presets -----------------------------------------------------------------------------

async function loadPresets() {
  let presets = [];
  try { presets = await api("/api/presets"); } catch (err) { showMessage(err.message); return; }
  const list = $("#preset-list");
  if (!presets.length) {
    list.replaceChildren(el("li", { class: "empty" }, "No presets yet: set a method and options, then save them."));
    return;
  }
  list.replaceChildren(...presets.map((p) => {
    const opts = Object.entries(p.options).map(([k, v]) => `${k}:${v}`).join(" ");
    return el("li", { "data-preset": p.name },
      el("span", { class: "preset-name" }, p.name),
      el("span", { class: "preset-desc" }, `${p.method} ${opts}${p.style_count ? ` \u00b7 ${p.style_count} style` : ""}`),
      el("button", { type: "button", class: "use", onclick: () => usePreset(p.name, true) }, "Use"),
      el("button", { type: "button", class: "delete", onclick: () => deletePreset(p.name) }, "Delete"));
  }));
}

async function usePreset(name, rewrite) {
  try {
    state.presetData = await api(`/api/presets/${encodeURIComponent(name)}`);
  } catch (err) {
    hint(err.message);
    return;
  }
  state.preset = state.presetData.name;
  if (state.byName[state.presetData.method]) state.method = state.presetData.method;
  if (rewrite) { state.options = {}; state.blend = null; }
  const note = $("#preset-note");
  note.hidden = false;
  note.replaceChildren(`Using preset \u201c${state.preset}\u201d (${state.presetData.method}); its style images and options apply. `,
    el("button", { type: "button", class: "link", onclick: () => { clearPreset(true); } }, "Stop using it"));
  renderMethod();
  renderStyles();
  if (rewrite) writeCommand();
}

function clearPreset(rewrite) {
  if (!state.preset) return;
  state.preset = null;
  state.presetData = null;
  $("#preset-note").hidden = true;
  renderStyles();
  renderOptions();
  if (rewrite) writeCommand();
}

async function savePreset() {
  const name = $("#preset-name").value.trim();
  const form = formFor(commandText());
  form.delete("content");
  form.append("name", name);
  try {
    const saved = await api("/api/presets", { method: "POST", body: form });
    showMessage(`Saved preset \u201c${saved.name}\u201d.`);
    $("#preset-name").value = "";
    loadPresets();
  } catch (err) {
    showMessage(err.message);
  }
}

async function deletePreset(name) {
  try {
    await api(`/api/presets/${encodeURIComponent(name)}`, { method: "DELETE" });
    if (state.preset === name) clearPreset(true);
    showMessage(`Deleted preset \u201c${name}\u201d.`);
  } catch (err) {
    showMessage(err.message);
  }
  loadPresets();
}

// -- health ------------------------------------------------------------------------------

async function pollHealth() {
  try {
    const h = await api("/healthz");
    const adapters = Object.entries(h.adapters).map(([n, a]) => `${n} ${a.state}`).join(", ");
    $("#health").textContent = `${h.engine.device || "?"} \u00b7 queue ${h.queue.length} \u00b7 ${adapters}`;
    $("#health").className = `health ${h.status}`;
  } catch (err) {
    $("#health").textContent = "Stylebot is not answering";
    $("#health").className = "health down";
  }
}

// -- start -------------------------------------------------------------------------------

async function start() {
  $("#command-hint").dataset.original = $("#command-hint").innerHTML;
  try {
    state.config = await api("/api/config");
    state.methods = await api("/api/methods");
  } catch (err) {
    showStatus("failed", err.message);
    return;
  }
  state.byName = Object.fromEntries(state.methods.map((m) => [m.name, m]));
  if (!state.byName[state.method] && state.methods.length) state.method = state.methods[0].name;
  renderMethodPicker();
  renderMethod();
  writeCommand();
  document.querySelectorAll(".drop").forEach(wireDrop);
  wireCommandDrop();

  $("#command-form").addEventListener("submit", (e) => { e.preventDefault(); runCommand(); });
  $("#command").addEventListener("input", onCommandTyped);
  $("#method").addEventListener("change", () => {
    clearPreset(false);
    state.method = $("#method").value;
    state.options = {};
    state.blend = null;
    renderMethod();
    writeCommand();
  });
  $("#prompt").addEventListener("input", () => { state.prompt = $("#prompt").value; writeCommand(); });
  $("#quality").addEventListener("change", () => setOption("quality", $("#quality").value || null));
  $("#reroll").addEventListener("click", reroll);
  $("#cancel").addEventListener("click", () => cancelJob(false));
  $("#preset-save").addEventListener("click", savePreset);
  loadPresets();
  pollHealth();
  setInterval(pollHealth, 5000);
  document.body.dataset.ready = "1";
}

document.addEventListener("DOMContentLoaded", start);
