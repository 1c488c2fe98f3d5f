/** Typed, validated reads of the synced traits listed in docs/wire.md. */
import type { AnyModel } from "./anywidget";
import { asBytes, readFloat32LE } from "./bytes";

export type RunStatus = "ready" | "running" | "error";

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
    atlas: asBytes(model.get("atlas")),
    runId: int(model.get("run_id")),
    prompt: str(model.get("prompt")),
    history: strings(model.get("history")),
    status: status(model.get("status")),
    error: str(model.get("error")),
    canRun: model.get("can_run") === true,
    modelName: str(model.get("model_name")),
    scoreNames: strings(model.get("score_names")),
    scores: floats(model.get("scores")),
    scoresRunId: int(model.get("scores_run_id")),
    note: str(model.get("note")),
  };
}

/** Select a head from the browser: both traits in one sync. */
export function selectHead(model: AnyModel, layer: number, head: number): void {
  model.set("layer", layer);
  model.set("head", head);
  model.save_changes();
}
