/**
 * anywidget entry point. `initialize` runs once per model and owns the `msg:custom` handler
 * (anywidget holds incoming messages until `initialize` resolves, not until a view exists);
 * `render` runs once per view and returns its cleanup. The kernel link (see `model/channel`)
 * and the head cache live per model; everything else per view.
 */
import type { AnyModel, InitializeProps, RenderProps } from "./model/anywidget";
import { Channel, randomToken } from "./model/channel";
import { HeadHub } from "./model/heads";
import { Transport } from "./model/transport";
import { register, registry } from "./registry";
import { HeadscopeView } from "./widget";

/** Per-model links. Keys are models, so widgets never see each other's state. */
const links = new WeakMap<object, ModelLink>();

/**
 * anywidget hands `initialize` and `render` different proxies of one model. Backbone's `set`
 * returns the underlying model, and `set({})` changes nothing, so that is a stable key; hosts
 * whose `set` returns nothing key by the object they pass.
 */
function modelKey(model: AnyModel): object {
  const underlying = (model.set as unknown as (attrs: object) => unknown)({});
  return typeof underlying === "object" && underlying !== null ? underlying : model;
}

/** A model's link to its kernel and its head cache, shared by the model's views. */
export interface ModelLink {
  channel: Channel;
  hub: HeadHub;
  transport: Transport;
}

function createLink(model: AnyModel): { link: ModelLink; detach: () => void } {
  const channel = new Channel(model);
  const transport = new Transport(model, (message) => channel.send(message));
  const hub = new HeadHub(
    (message) => channel.send(message),
    () => Number(model.get("run_id")) || 0,
    randomToken(),
    transport,
  );
  transport.checkState();
  const stop = channel.onCustom((content, buffers) => hub.receive(content, buffers));
  return {
    link: { channel, hub, transport },
    detach: () => {
      stop();
      channel.dispose();
    },
  };
}

function initialize({ model }: InitializeProps): () => void {
  const key = modelKey(model);
  const { link, detach } = createLink(model);
  links.set(key, link);
  return () => {
    detach();
    if (links.get(key) === link) links.delete(key);
  };
}

function render({ model, el }: RenderProps): () => void {
  // A host that skipped `initialize` still works: the view then owns a link of its own.
  const owned = links.has(modelKey(model)) ? null : createLink(model);
  const link = owned?.link ?? links.get(modelKey(model));
  if (link === undefined) throw new Error("headscope: no kernel link for this model");
  const view = new HeadscopeView(model, link);
  el.appendChild(view.root);
  // publish the view to hosts on this page (the JupyterLab extension docks its side panel)
  const unregister = register(registry(), {
    id: view.root.id,
    model,
    element: view.root,
    mountSidePanel: (host) => view.mountSidePanel(host),
    summary: () => view.summary(),
    act: (action) => view.act(action),
    docked: true,
  });
  return () => {
    unregister();
    view.dispose();
    owned?.detach();
  };
}

export default { initialize, render };
