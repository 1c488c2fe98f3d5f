/** Typed, validated reads of the synced traits listed in docs/wire.md. */
import type { AnyModel } from "./anywidget";
import { asBytes, readFloat32LE } from "./bytes";
import { bytesTrait, usesText } from "./transport";

export type RunStatus = "ready" | "running" | "error";

/** A head with a known role (docs/wire.md, `known_heads`). */
export interface KnownHead {
  role: string;
  layer: number;
  head: number;
}

export interface Traits {
  tokens: string[];
  nLayers: number;
  nHeads: number;
  layer: number;
  head: number;
  thumbSize: number;
  atlas: Uint8Array;
  runId: number;
  prompt: string;
  history: string[];
  status: RunStatus;
  error: string;
  canRun: boolean;
  modelName: string;
  scoreNames: string[];
  /** float32 `[score, layer, head]`, for run `scoresRunId` (docs/wire.md). */
  scores: Float32Array;
  scoresRunId: number;
  note: string;
  knownHeads: KnownHead[];
  /** Ablation of run `ablationRunId` (docs/wire.md, `ablation_*`). */
  ablationHeads: [number, number][];
  ablationMethod: string;
  ablationLabel: string;
  ablationRunId: number;
  /** float32 `[2, seq_len]`: clean and ablated loss of each token (NaN for the first). */
  ablationLoss: Float32Array;
  ablationTopK: number;
  ablationTopTokens: string[];
  /** int32 `[2, seq_len, k]` indices into `ablationTopTokens`. */
  ablationTopIds: Int32Array;
  /** float32 `[2, seq_len, k]` probabilities. */
  ablationTopProbs: Float32Array;
  patchClean: string;
  patchCorrupted: string;
  patchMetric: string;
  /** float32 `[layer, head]`: normalized patching effect (0 as corrupted, 1 as clean). */
  patchEffect: Float32Array;
  patchId: number;
  /** Fraction of heads patched while patching runs; -1 otherwise. */
  patchProgress: number;
  patchSummary: string;
  /** The kernel sends bytes as base64 because this host drops binary data (./transport). */
  textTransport: boolean;
  /** A page written by `w.save_html`: there is no kernel at all (js/export). */
  staticExport: boolean;
  /** Position of the first generated token (docs/wire.md, `generated_from`); -1 when none. */
  generatedFrom: number;
  /** Token 0 is the BOS the model prepends (docs/wire.md, `bos_first`): "hide BOS" applies. */
  bosFirst: boolean;
  /** Value-weighted display (docs/value-weighted.md), both ways; the reason it is unavailable. */
  valueWeighted: boolean;
  valueWeightedReason: string;
  /** float32 `[head, key_pos]`: value norms of layer `valueNormsLayer` of run `valueNormsRunId`. */
  valueNorms: Float32Array;
  valueNormsLayer: number;
  valueNormsRunId: number;
  /** The value-weighted atlas (as `atlas`), for run `atlasValueWeightedRunId`. */
  atlasValueWeighted: Uint8Array;
  atlasValueWeightedRunId: number;
}

/** Trait names whose change affects the view (for `change:<name>` subscriptions). */
export const TRAIT_NAMES = [
  "tokens",
  "n_layers",
  "n_heads",
  "layer",
  "head",
  "thumb_size",
  "atlas",
  "run_id",
  "prompt",
  "history",
  "status",
  "error",
  "can_run",
  "model_name",
  "score_names",
  "scores",
  "scores_run_id",
  "note",
  "known_heads",
  "ablation_heads",
  "ablation_method",
  "ablation_label",
  "ablation_run_id",
  "ablation_loss",
  "ablation_top_k",
  "ablation_top_tokens",
  "ablation_top_ids",
  "ablation_top_probs",
  "patch_clean",
  "patch_corrupted",
  "patch_metric",
  "patch_effect",
  "patch_id",
  "patch_progress",
  "patch_summary",
  "transport",
  "text_data",
  "generated_from",
  "bos_first",
  "value_weighted",
  "value_weighted_reason",
  "value_norms",
  "value_norms_layer",
  "value_norms_run_id",
  "atlas_value_weighted",
  "atlas_value_weighted_run_id",
] as const;

function int(value: unknown): number {
  return typeof value === "number" && Number.isFinite(value) ? Math.trunc(value) : 0;
}

function str(value: unknown): string {
  return typeof value === "string" ? value : "";
}

function strings(value: unknown): string[] {
  return Array.isArray(value) ? value.map((item) => String(item)) : [];
}

function floats(value: unknown): Float32Array {
  const bytes = asBytes(value);
  return readFloat32LE(bytes, Math.floor(bytes.length / 4));
}

function int32s(value: unknown): Int32Array {
  const bytes = asBytes(value);
  const count = Math.floor(bytes.length / 4);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Int32Array(count);
  for (let i = 0; i < count; i++) out[i] = view.getInt32(i * 4, true);
  return out;
}

function num(value: unknown, fallback: number): number {
  return typeof value === "number" && Number.isFinite(value) ? value : fallback;
}

/** `[[layer, head], …]`; malformed entries are dropped. */
function headPairs(value: unknown): [number, number][] {
  if (!Array.isArray(value)) return [];
  const out: [number, number][] = [];
  for (const item of value) {
    if (Array.isArray(item) && item.length === 2 && Number.isInteger(item[0]) && Number.isInteger(item[1])) {
      out.push([item[0] as number, item[1] as number]);
    }
  }
  return out;
}

/** `[{role, layer, head}, …]`; malformed entries are dropped. */
function knownHeads(value: unknown): KnownHead[] {
  if (!Array.isArray(value)) return [];
  const out: KnownHead[] = [];
  for (const item of value) {
    if (typeof item !== "object" || item === null) continue;
    const { role, layer, head } = item as Record<string, unknown>;
    if (typeof role === "string" && role !== "" && Number.isInteger(layer) && Number.isInteger(head)) {
      out.push({ role, layer: layer as number, head: head as number });
    }
  }
  return out;
}

function status(value: unknown): RunStatus {
  return value === "running" || value === "error" ? value : "ready";
}

export function readTraits(model: AnyModel): Traits {
  return {
    tokens: strings(model.get("tokens")),
    nLayers: int(model.get("n_layers")),
    nHeads: int(model.get("n_heads")),
    layer: int(model.get("layer")),
    head: int(model.get("head")),
    thumbSize: int(model.get("thumb_size")),
    atlas: bytesTrait(model, "atlas"),
    runId: int(model.get("run_id")),
    prompt: str(model.get("prompt")),
    history: strings(model.get("history")),
    status: status(model.get("status")),
    error: str(model.get("error")),
    canRun: model.get("can_run") === true,
    modelName: str(model.get("model_name")),
    scoreNames: strings(model.get("score_names")),
    scores: floats(bytesTrait(model, "scores")),
    scoresRunId: int(model.get("scores_run_id")),
    note: str(model.get("note")),
    knownHeads: knownHeads(model.get("known_heads")),
    ablationHeads: headPairs(model.get("ablation_heads")),
    ablationMethod: str(model.get("ablation_method")),
    ablationLabel: str(model.get("ablation_label")),
    ablationRunId: int(model.get("ablation_run_id")),
    ablationLoss: floats(bytesTrait(model, "ablation_loss")),
    ablationTopK: int(model.get("ablation_top_k")),
    ablationTopTokens: strings(model.get("ablation_top_tokens")),
    ablationTopIds: int32s(bytesTrait(model, "ablation_top_ids")),
    ablationTopProbs: floats(bytesTrait(model, "ablation_top_probs")),
    patchClean: str(model.get("patch_clean")),
    patchCorrupted: str(model.get("patch_corrupted")),
    patchMetric: str(model.get("patch_metric")),
    patchEffect: floats(bytesTrait(model, "patch_effect")),
    patchId: int(model.get("patch_id")),
    patchProgress: num(model.get("patch_progress"), -1),
    patchSummary: str(model.get("patch_summary")),
    textTransport: usesText(model),
    staticExport: model.get("static_export") === true,
    generatedFrom: typeof model.get("generated_from") === "number" ? int(model.get("generated_from")) : -1,
    bosFirst: model.get("bos_first") === true,
    valueWeighted: model.get("value_weighted") === true,
    valueWeightedReason: str(model.get("value_weighted_reason")),
    valueNorms: floats(bytesTrait(model, "value_norms")),
    valueNormsLayer: typeof model.get("value_norms_layer") === "number" ? int(model.get("value_norms_layer")) : -1,
    valueNormsRunId: int(model.get("value_norms_run_id")),
    atlasValueWeighted: bytesTrait(model, "atlas_value_weighted"),
    atlasValueWeightedRunId: int(model.get("atlas_value_weighted_run_id")),
  };
}

/** Select a head from the browser: both traits in one sync. */
export function selectHead(model: AnyModel, layer: number, head: number): void {
  model.set("layer", layer);
  model.set("head", head);
  model.save_changes();
}
