// A minimal anywidget host: a fake model per widget (get/set/on/off/save_changes/send) whose
// kernel is the real Python widget, reached through functions the test exposes:
//   window.hsKernelMessage(id, content) -> {messages: [{content, buffers: [base64]}], state}
//   window.hsKernelSave(id, changes)    -> {state}
// Bytes traits travel as {"$b64": "..."} and reach the widget as DataViews with a nonzero
// byteOffset (like real comm buffers sliced out of a larger message).
//
// Stand-ins for other hosts: `hsMount(id, state, {dropBuffers: true})` drops every binary buffer,
// in the state and in messages (as Colab's widget manager is known to; "state" or "messages"
// drops only those); `hsCreate` makes a model
// without a view and `hsRender` renders a view of it later, as often as asked (VS Code renders
// off-screen outputs late; an output can be shown twice).
import widget from "/python/headscope/static/widget.js";

function bytesView(b64) {
  const raw = atob(b64);
  const pad = 3;
  const buf = new ArrayBuffer(raw.length + pad + 5);
  const bytes = new Uint8Array(buf, pad, raw.length);
  for (let i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
  return new DataView(buf, pad, raw.length);
}

function isBytes(value) {
  return value !== null && typeof value === "object" && "$b64" in value;
}

class FakeModel {
  constructor(id, state, options = {}) {
    this.id = id;
    // dropBuffers: true (state and messages), "state" or "messages"
    this.dropState = options.dropBuffers === true || options.dropBuffers === "state";
    this.dropMessages = options.dropBuffers === true || options.dropBuffers === "messages";
    this.attrs = {};
    this.listeners = new Map();
    this.pending = {};
    this.sent = [];
    this.saved = [];
    this.comm_live = true; // as ipywidgets' WidgetModel; false once the kernel is gone
    for (const [k, v] of Object.entries(state)) this.attrs[k] = this.decode(v);
  }
  /** A bytes value as the widget receives it; a dropped buffer arrives as nothing at all. */
  decode(value) {
    if (!isBytes(value)) return value;
    return this.dropState ? undefined : bytesView(value.$b64);
  }
  get(name) {
    return this.attrs[name];
  }
  set(name, value) {
    if (typeof name === "object") return this; // Backbone's set({}) form: nothing to change
    this.attrs[name] = value;
    this.pending[name] = value;
    this.emit(`change:${name}`, this, value);
    return this;
  }
  save_changes() {
    if (!this.comm_live) throw new Error("Cannot send: the comm is closed");
    const changes = this.pending;
    this.pending = {};
    this.saved.push(changes);
    window.hsKernelSave(this.id, changes).then((reply) => this.applyState(reply.state));
  }
  send(content) {
    if (!this.comm_live) throw new Error("Cannot send: the comm is closed");
    this.sent.push(content);
    window.hsKernelMessage(this.id, content).then((reply) => {
      this.applyState(reply.state);
      for (const m of reply.messages) {
        const buffers = this.dropMessages ? [] : m.buffers.map(bytesView);
        setTimeout(() => this.emit("msg:custom", m.content, buffers), 0);
      }
    });
  }
  /** Simulate a kernel-side trait change (as a comm "update" would). */
  applyState(state) {
    for (const [k, v] of Object.entries(state || {})) {
      this.attrs[k] = this.decode(v);
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

window.hsModels = {};
window.hsCleanups = {};
window.hsViews = {};

window.hsMount = async (id, state, options = {}) => {
  await window.hsCreate(id, state, options);
  await window.hsRender(id, `slot-${id}`);
};

/** A model and its `initialize`, with no view yet (a host that renders late). */
window.hsCreate = async (id, state, options = {}) => {
  const model = new FakeModel(id, state, options);
  const cleanupInit = await widget.initialize({ model });
  window.hsModels[id] = model;
  window.hsViews[id] = [];
  window.hsCleanups[id] = () => {
    for (const cleanup of window.hsViews[id]) cleanup();
    cleanupInit();
  };
};

/** One more view of model `id`, rendered into a new element with id `slotId`. */
window.hsRender = async (id, slotId) => {
  const slot = document.createElement("div");
  slot.className = "host-slot";
  slot.id = slotId;
  document.getElementById("slots").appendChild(slot);
  window.hsViews[id].push(await widget.render({ model: window.hsModels[id], el: slot }));
};

/** What a kernel restart does to a model in JupyterLab: the manager sets comm_live to false. */
window.hsKill = (id) => {
  const model = window.hsModels[id];
  model.comm_live = false;
  model.emit("comm_live_update");
};

window.hsReady = true;
