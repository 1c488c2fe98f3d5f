/**
 * The offline HTML export's entry point (bundled as a classic script, inlined into the file by
 * `headscope._export.html`): it reads the export's JSON, decodes its bytes traits, and renders the
 * widget into the page through the same `initialize`/`render` as anywidget does, with a
 * {@link StaticModel} in place of the kernel's model. Heads are decoded when first shown.
 *
 * The page's elements (see `headscope/_export/html.py`):
 * - `#headscope-export-state`: the JSON (./data `ExportDocument`);
 * - `#headscope-head-<layer>-<head>`: one head's base64, the first shown head before this
 *   script, the others after it (read once the parser has reached them);
 * - `#headscope-export-root`: where the widget goes.
 *
 * When it is done, `<html data-hs-export>` is "ready" (or "error", with the message in the page).
 */
import widget from "../index";
import { BINARY_PROBE } from "../model/transport";
import { decodeHead, headElementId, parseDocument, unpackBytes, type ExportDocument, type ExportedHead, type HeadBytes } from "./data";
import { NO_KERNEL, StaticModel, type HeadSource } from "./static-model";

const STATE_ID = "headscope-export-state";
const ROOT_ID = "headscope-export-root";

/** The page has been parsed to its end (every head's element exists). */
function parsed(): Promise<void> {
  if (document.readyState !== "loading") return Promise.resolve();
  return new Promise((resolve) => document.addEventListener("DOMContentLoaded", () => resolve(), { once: true }));
}

/** Heads from the page's data elements. */
export class PageHeads implements HeadSource {
  readonly seqLen: number;
  private readonly index = new Map<string, ExportedHead>();

  constructor(private readonly doc: ExportDocument) {
    this.seqLen = doc.seq_len;
    for (const entry of doc.heads) this.index.set(`${entry.layer}/${entry.head}`, entry);
  }

  packing(layer: number, head: number): "tril" | "full" | null {
    return this.index.get(`${layer}/${head}`)?.packing ?? null;
  }

  async load(layer: number, head: number): Promise<HeadBytes> {
    const entry = this.index.get(`${layer}/${head}`);
    if (entry === undefined) throw new Error(this.missing(layer, head));
    let el = document.getElementById(headElementId(layer, head));
    if (el === null) {
      await parsed();
      el = document.getElementById(headElementId(layer, head));
    }
    if (el === null) throw new Error(`the data of layer ${layer}, head ${head} is missing from the page`);
    return decodeHead(el.textContent ?? "", entry, this.seqLen);
  }

  missing(layer: number, head: number): string {
    const t = this.doc.traits;
    const nLayers = Number(t.n_layers);
    const nHeads = Number(t.n_heads);
    if (!(layer >= 0 && layer < nLayers && head >= 0 && head < nHeads)) {
      return `layer ${layer}, head ${head} is out of range: the model has ${nLayers} layers of ${nHeads} heads`;
    }
    return `layer ${layer}, head ${head} is not in this export (it holds ${this.doc.heads.length} of the ` +
      `${this.doc.total_heads} heads; export with heads="all" to include every head)`;
  }
}

/** The model's state: the JSON traits, the bytes traits decoded, and the constants. */
async function modelState(doc: ExportDocument): Promise<Record<string, unknown>> {
  const state: Record<string, unknown> = { ...doc.traits };
  const names = Object.keys(doc.bytes);
  const decoded = await Promise.all(names.map((name) => unpackBytes(doc.bytes[name], name)));
  names.forEach((name, i) => (state[name] = decoded[i]));
  state.binary_probe = Uint8Array.from(BINARY_PROBE);
  state.transport = "binary";
  state.text_data = {};
  state.can_run = false;
  state.static_export = true; // the panel says "static export", not "precomputed attention"
  state.note = typeof state.note === "string" && state.note !== "" && state.note !== NO_KERNEL ? state.note : NO_KERNEL;
  return state;
}

function fail(root: HTMLElement | null, err: unknown): void {
  document.documentElement.dataset.hsExport = "error";
  const box = document.createElement("pre");
  box.className = "hs-export-error";
  box.setAttribute("role", "alert");
  box.textContent = `headscope could not open this export: ${err instanceof Error ? err.message : String(err)}`;
  (root ?? document.body).append(box);
}

/** A performance mark for benchmarks/export.py ("hs-export:<name>"). */
function mark(name: string): void {
  performance.mark(`hs-export:${name}`);
}

async function boot(): Promise<void> {
  mark("start");
  const root = document.getElementById(ROOT_ID);
  try {
    const data = document.getElementById(STATE_ID);
    if (root === null || data === null) throw new Error("the page lacks the export's elements");
    const doc = parseDocument(data.textContent ?? "");
    const heads = new PageHeads(doc);
    const model = new StaticModel({}, heads);
    // the first head decodes while the atlas does
    void model.prefetch(Number(doc.traits.layer), Number(doc.traits.head));
    for (const [name, value] of Object.entries(await modelState(doc))) model.set(name, value);
    mark("decoded");
    await widget.initialize({ model });
    widget.render({ model, el: root });
    mark("rendered");
    document.documentElement.dataset.hsExport = "ready";
  } catch (err) {
    fail(root, err);
  }
}

void boot();
