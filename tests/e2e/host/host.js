// A minimal anywidget host: a fake model per widget (get/set/on/off/save_changes/send) whose
// kernel is the real Python widget, reached through functions the test exposes:
//   window.hsKernelMessage(id, content) -> {messages: [{content, buffers: [base64]}], state}
//   window.hsKernelSave(id, changes)    -> {state}
// Bytes traits travel as {"$b64": "..."} and reach the widget as DataViews with a nonzero
// byteOffset (like real comm buffers sliced out of a larger message).
import widget from "/python/headscope/static/widget.js";

function bytesView(b64) {
  const raw = atob(b64);
  const pad = 3;
  const buf = new ArrayBuffer(raw.length + pad + 5);
  const bytes = new Uint8Array(buf, pad, raw.length);
  for (let i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
  return new DataView(buf, pad, raw.length);
}

function decodeValue(value) {
  return value !== null && typeof value === "object" && "$b64" in value ? bytesView(value.$b64) : value;
}

class FakeModel {
  constructor(id, state) {
    this.id = id;
    this.attrs = {};
    this.listeners = new Map();
    this.pending = {};
    this.sent = [];
    this.saved = [];
    this.comm_live = true; // as ipywidgets' WidgetModel; false once the kernel is gone
    for (const [k, v] of Object.entries(state)) this.attrs[k] = decodeValue(v);
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
        const buffers = m.buffers.map(bytesView);
        setTimeout(() => this.emit("msg:custom", m.content, buffers), 0);
      }
    });
  }
  /** Simulate a kernel-side trait change (as a comm "update" would). */
  applyState(state) {
    for (const [k, v] of Object.entries(state || {})) {
      this.attrs[k] = decodeValue(v);
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

window.hsMount = async (id, state) => {
  const model = new FakeModel(id, state);
  const slot = document.createElement("div");
  slot.className = "host-slot";
  slot.id = `slot-${id}`;
  document.getElementById("slots").appendChild(slot);
  const cleanupInit = await widget.initialize({ model });
  const cleanupView = await widget.render({ model, el: slot });
  window.hsModels[id] = model;
  window.hsCleanups[id] = () => {
    cleanupView();
    cleanupInit();
  };
};

/** What a kernel restart does to a model in JupyterLab: the manager sets comm_live to false. */
window.hsKill = (id) => {
  const model = window.hsModels[id];
  model.comm_live = false;
  model.emit("comm_live_update");
};

window.hsReady = true;
