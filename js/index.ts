/**
 * anywidget entry point. `initialize` runs once per model and owns the `msg:custom` handler
 * (anywidget holds incoming messages until `initialize` resolves, not until a view exists);
 * `render` runs once per view and returns its cleanup.
 */
import type { AnyModel, InitializeProps, RenderProps } from "./model/anywidget";
import { HeadHub } from "./model/heads";
import { HeadscopeView } from "./widget";

/** Per-model hubs. Keys are models, so widgets never see each other's state. */
const hubs = new WeakMap<object, HeadHub>();

/**
 * anywidget hands `initialize` and `render` different proxies of one model. Backbone's `set`
 * returns the underlying model, and `set({})` changes nothing, so that is a stable key; hosts
 * whose `set` returns nothing key by the object they pass.
 */
function modelKey(model: AnyModel): object {
  const underlying = (model.set as unknown as (attrs: object) => unknown)({});
  return typeof underlying === "object" && underlying !== null ? underlying : model;
}

function createHub(model: AnyModel): { hub: HeadHub; detach: () => void } {
  const hub = new HeadHub(
    (message) => model.send(message),
    () => Number(model.get("run_id")) || 0,
  );
  const onMessage = (content: unknown, buffers: readonly unknown[] = []): void => hub.receive(content, buffers);
  model.on("msg:custom", onMessage);
  return { hub, detach: () => model.off("msg:custom", onMessage) };
}

function initialize({ model }: InitializeProps): () => void {
  const key = modelKey(model);
  const { hub, detach } = createHub(model);
  hubs.set(key, hub);
  return () => {
    detach();
    if (hubs.get(key) === hub) hubs.delete(key);
  };
}

function render({ model, el }: RenderProps): () => void {
  // A host that skipped `initialize` still works: the view then owns a hub of its own.
  const owned = hubs.has(modelKey(model)) ? null : createHub(model);
  const hub = owned?.hub ?? hubs.get(modelKey(model));
  if (hub === undefined) throw new Error("headscope: no head hub for this model");
  const view = new HeadscopeView(model, hub);
  el.appendChild(view.root);
  return () => {
    view.dispose();
    owned?.detach();
  };
}

export default { initialize, render };
