// Benchmark page for headscope: the built widget bundle with a minimal anywidget model whose
// kernel is the real Python widget, reached through two functions the benchmark exposes:
//   window.hsbKernelMessage(content) -> {messages: [{content, buffers: [base64]}], state}
//   window.hsbKernelSave(changes)    -> {state}
// Bytes traits arrive as {"$b64": "..."} and are decoded before the clock starts: in Jupyter
// they arrive as binary comm buffers. Every time is performance.now() inside this page.
import widget from "/python/headscope/static/widget.js";

function fromBase64(b64) {
  const raw = atob(b64);
  const bytes = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
  return new DataView(bytes.buffer);
}

const decode = (v) => (v !== null && typeof v === "object" && "$b64" in v ? fromBase64(v.$b64) : v);

class BenchModel {
  constructor(state) {
    this.attrs = {};
    this.listeners = new Map();
    this.pending = {};
    this.requests = 0;
    this.timeline = []; // one entry per kernel message: sent, answered, decoded (page clock)
    for (const [k, v] of Object.entries(state)) this.attrs[k] = decode(v);
  }
  get(name) {
    return this.attrs[name];
  }
  set(name, value) {
    if (typeof name === "object") return this;
    this.attrs[name] = value;
    this.pending[name] = value;
    this.emit(`change:${name}`, this, value);
    return this;
  }
  save_changes() {
    const changes = this.pending;
    this.pending = {};
    window.hsbKernelSave(changes).then((reply) => this.apply(reply.state));
  }
  send(content) {
    if (content && content.type === "request_head") this.requests++;
    const entry = { type: content && content.type, sent: performance.now() };
    this.timeline.push(entry);
    window.hsbKernelMessage(content).then((reply) => {
      entry.answered = performance.now();
      entry.kernel_ms = reply.kernel_ms;
      this.apply(reply.state);
      const decoded = reply.messages.map((m) => [m.content, m.buffers.map(fromBase64)]);
      entry.decoded = performance.now();
      for (const [content, buffers] of decoded) setTimeout(() => this.emit("msg:custom", content, buffers), 0);
    });
  }
  apply(state) {
    for (const [k, v] of Object.entries(state || {})) {
      this.attrs[k] = decode(v);
      this.emit(`change:${k}`, this, this.attrs[k]);
    }
  }
  on(name, cb) {
    if (!this.listeners.has(name)) this.listeners.set(name, new Set());
    this.listeners.get(name).add(cb);
  }
  off(name, cb) {
    if (name == null) this.listeners.clear();
    else if (cb == null) this.listeners.delete(name);
    else this.listeners.get(name)?.delete(cb);
  }
  emit(name, ...args) {
    for (const cb of [...(this.listeners.get(name) || [])]) cb(...args);
  }
}

const frame = () => new Promise((resolve) => requestAnimationFrame(() => resolve(performance.now())));
const slot = () => document.getElementById("slot");

/** Resolves (with performance.now()) once the pattern view shows head (layer, head), drawn. */
function shown(layer, head) {
  const label = `layer ${layer} · head ${head}`;
  const done = () => {
    const p = slot().querySelector(".hs-pattern");
    const l = slot().querySelector(".hs-head-label");
    return p !== null && l !== null && l.textContent === label && p.getAttribute("aria-busy") === "false";
  };
  return new Promise((resolve) => {
    if (done()) return resolve(performance.now());
    const observer = new MutationObserver(() => {
      if (!done()) return;
      observer.disconnect();
      resolve(performance.now());
    });
    observer.observe(slot(), { subtree: true, childList: true, attributes: true, characterData: true });
  });
}

let model = null;

/**
 * Where the time of a switch went, for the last head request sent after `t0`: the kernel's own
 * work (Python, timed there), the stand-in transport (DevTools protocol + base64 both ways) and
 * the front end (from the decoded answer to the head drawn).
 */
function parts(t0, drawn) {
  const e = model.timeline.filter((x) => x.type === "request_head" && x.sent >= t0).at(-1);
  if (!e || e.decoded === undefined) return {};
  return {
    kernel_ms: e.kernel_ms,
    transport_ms: e.decoded - e.sent - e.kernel_ms,
    front_ms: drawn - e.decoded,
  };
}

function heap() {
  if (typeof window.gc === "function") window.gc();
  return performance.memory ? performance.memory.usedJSHeapSize : null;
}

/** Mount the widget on `state` (the kernel's first message) and time its first painted pattern. */
window.hsbFirstPaint = async (state) => {
  model = new BenchModel(state); // decoding is transport, not the widget's work
  const heapBefore = heap();
  await window.hsbKernelMessage({ type: "benchmark_warmup" }); // a comm is warm; so is this path
  await frame();
  const t0 = performance.now();
  const ready = shown(model.get("layer"), model.get("head"));
  await widget.initialize({ model });
  await widget.render({ model, el: slot() });
  const drawn = await ready;
  const painted = await frame();
  await frame();
  return { drawn_ms: drawn - t0, painted_ms: painted - t0, requests: model.requests, heap_bytes: heap(), heap_before_bytes: heapBefore, ...parts(t0, drawn) };
};

/** Switch to (layer, head) as the atlas does; time until drawn and until the next frame. */
window.hsbSwitch = async (layer, head) => {
  await frame();
  await new Promise((resolve) => setTimeout(resolve, 0));
  const before = model.requests;
  const t0 = performance.now();
  const ready = shown(layer, head);
  model.set("layer", layer);
  model.set("head", head);
  model.save_changes();
  const drawn = await ready;
  const painted = await frame();
  await frame();
  return { drawn_ms: drawn - t0, painted_ms: painted - t0, requested: model.requests > before, ...parts(t0, drawn) };
};

/** Move the pointer onto cell (query, key) of the pattern; time until the tooltip names it. */
window.hsbHover = async (query, key) => {
  const overlay = slot().querySelector(".hs-pattern-overlay");
  const tip = slot().querySelector(".hs-tooltip");
  const rect = overlay.getBoundingClientRect();
  const view = slot().querySelector(".hs-pattern-base").width; // cells across (no zoom)
  const x = rect.left + ((key + 0.5) * rect.width) / view;
  const y = rect.top + ((query + 0.5) * rect.height) / view;
  await frame();
  await new Promise((resolve) => setTimeout(resolve, 0));
  const want = `query ${query} `;
  const t0 = performance.now();
  overlay.dispatchEvent(new PointerEvent("pointermove", { clientX: x, clientY: y, bubbles: true, pointerId: 1, isPrimary: true }));
  let drawn = null;
  if (!tip.hidden && tip.textContent.startsWith(want)) drawn = performance.now();
  else {
    drawn = await new Promise((resolve) => {
      const observer = new MutationObserver(() => {
        if (tip.hidden || !tip.textContent.startsWith(want)) return;
        observer.disconnect();
        resolve(performance.now());
      });
      observer.observe(tip, { subtree: true, childList: true, attributes: true, characterData: true });
    });
  }
  const painted = await frame();
  return { drawn_ms: drawn - t0, painted_ms: painted - t0, text: tip.textContent };
};

/** The atlas's grid and box, CSS px (the grid is wider or taller than its box when it scrolls). */
window.hsbAtlasGeometry = () => {
  const box = slot().querySelector(".hs-atlas");
  const canvas = box.querySelector(".hs-atlas-canvas").getBoundingClientRect();
  const pitch = (canvas.width - 26) / model.get("n_heads");
  return { pitch, grid_width: canvas.width, grid_height: canvas.height, box_width: box.clientWidth, box_height: box.clientHeight };
};

/** Whether the selected head's cell lies inside the atlas's box, clear of its label margins. */
function selectedInView() {
  const box = slot().querySelector(".hs-atlas");
  const canvas = box.querySelector(".hs-atlas-canvas").getBoundingClientRect();
  const port = box.getBoundingClientRect();
  const { pitch } = window.hsbAtlasGeometry();
  const x = canvas.left + 26 + model.get("head") * pitch;
  const y = canvas.top + 18 + model.get("layer") * pitch;
  return x >= port.left + 26 && x + pitch <= port.left + box.clientWidth && y >= port.top + 18 && y + pitch <= port.top + box.clientHeight;
}

/**
 * Press an arrow key on the atlas: time until the atlas's label names the new selection (drawn
 * in the same task), the next frame (painted), and the new head's pattern drawn (a kernel
 * request: the head is new); then whether the selection is in the atlas's view one frame later.
 */
window.hsbAtlasKey = async (key) => {
  const canvas = slot().querySelector(".hs-atlas-canvas");
  await frame();
  await new Promise((resolve) => setTimeout(resolve, 0));
  const step = { ArrowRight: [0, 1], ArrowLeft: [0, -1], ArrowDown: [1, 0], ArrowUp: [-1, 0] }[key];
  const [layer, head] = [model.get("layer") + step[0], model.get("head") + step[1]];
  const want = `Selected: layer ${layer}, head ${head}.`;
  const pattern = shown(layer, head);
  const t0 = performance.now();
  canvas.dispatchEvent(new KeyboardEvent("keydown", { key, bubbles: true, cancelable: true }));
  const selected = (canvas.getAttribute("aria-label") || "").includes(want)
    ? performance.now()
    : await new Promise((resolve) => {
        const observer = new MutationObserver(() => {
          if (!(canvas.getAttribute("aria-label") || "").includes(want)) return;
          observer.disconnect();
          resolve(performance.now());
        });
        observer.observe(canvas, { attributes: true, attributeFilter: ["aria-label"] });
      });
  const painted = await frame();
  const drawn = await pattern;
  await frame();
  await frame();
  return { selected_ms: selected - t0, painted_ms: painted - t0, pattern_ms: drawn - t0, in_view: selectedInView() };
};

window.hsbHeap = () => heap();
window.hsbReady = true;
