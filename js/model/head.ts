/**
 * One head's quantized pattern as sent by the kernel (docs/wire.md, message `head`).
 * Weights stay packed as uint8 plus per-row float32 scales; they are decoded on access.
 */
import { asBytes, readFloat32LE } from "./bytes";
import { fromBase64 } from "./transport";

export type Packing = "tril" | "full";

export interface HeadPattern {
  readonly runId: number;
  readonly layer: number;
  readonly head: number;
  readonly seqLen: number;
  readonly packing: Packing;
  /** `scales[query_pos]`: the row's largest weight. */
  readonly scales: Float32Array;
  /** Packed uint8 row fractions (see {@link rowStart}). */
  readonly values: Uint8Array;
  /** Packed float weights, same layout, where a view reweighted the rows (state/reweight). */
  readonly exact?: Float32Array;
}

/** A request id as the kernel echoes it back (docs/wire.md): a string, or a number. */
export type RequestId = string | number | null;

export type HeadMessage =
  | { type: "head"; requestId: RequestId; pattern: HeadPattern }
  | { type: "head_error"; requestId: RequestId; message: string }
  | { type: "head_superseded"; requestId: RequestId };

/** Index in `values` of `(query_pos, key_pos = 0)`. */
export function rowStart(packing: Packing, seqLen: number, queryPos: number): number {
  return packing === "tril" ? (queryPos * (queryPos + 1)) / 2 : queryPos * seqLen;
}

/** Number of stored values of row `queryPos`. */
export function rowLength(packing: Packing, seqLen: number, queryPos: number): number {
  return packing === "tril" ? queryPos + 1 : seqLen;
}

export function packedSize(packing: Packing, seqLen: number): number {
  return packing === "tril" ? (seqLen * (seqLen + 1)) / 2 : seqLen * seqLen;
}

/** Quantized weight in 0…255 units of the full scale: `round(255 * weight)`. */
export function level(p: HeadPattern, queryPos: number, keyPos: number): number {
  if (keyPos >= rowLength(p.packing, p.seqLen, queryPos)) return 0;
  if (p.exact !== undefined) return Math.min(255, Math.round(255 * p.exact[rowStart(p.packing, p.seqLen, queryPos) + keyPos]));
  const v = p.values[rowStart(p.packing, p.seqLen, queryPos) + keyPos];
  return Math.min(255, Math.round(v * p.scales[queryPos]));
}

/** `weight[query_pos, key_pos] = values[i] / 255 * scales[query_pos]`; 0 above a tril diagonal. */
export function weight(p: HeadPattern, queryPos: number, keyPos: number): number {
  if (queryPos < 0 || keyPos < 0 || queryPos >= p.seqLen || keyPos >= p.seqLen) return 0;
  if (keyPos >= rowLength(p.packing, p.seqLen, queryPos)) return 0;
  if (p.exact !== undefined) return p.exact[rowStart(p.packing, p.seqLen, queryPos) + keyPos];
  return (p.values[rowStart(p.packing, p.seqLen, queryPos) + keyPos] / 255) * p.scales[queryPos];
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null;
}

function nonNegativeInt(value: unknown, name: string): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < 0) {
    throw new Error(`head message: ${name} must be a non-negative integer, got ${String(value)}`);
  }
  return value;
}

function decodePattern(content: Record<string, unknown>, buffers: readonly unknown[]): HeadPattern {
  const seqLen = nonNegativeInt(content.seq_len, "seq_len");
  const packing = content.packing;
  if (packing !== "tril" && packing !== "full") {
    throw new Error(`head message: unknown packing ${String(packing)}`);
  }
  const text = typeof content.scales_b64 === "string" && typeof content.values_b64 === "string";
  if (!text && buffers.length < 2) throw new Error(`head message: expected 2 buffers, got ${buffers.length}`);
  // the text transport (./transport) carries the same bytes as base64 in the JSON
  const scaleBytes = text ? fromBase64(content.scales_b64) : asBytes(buffers[0]);
  const values = text ? fromBase64(content.values_b64) : asBytes(buffers[1]);
  if (scaleBytes.byteLength !== seqLen * 4) {
    throw new Error(`head message: scales hold ${scaleBytes.byteLength} bytes, expected ${seqLen * 4}`);
  }
  if (values.byteLength !== packedSize(packing, seqLen)) {
    throw new Error(
      `head message: values hold ${values.byteLength} bytes, expected ${packedSize(packing, seqLen)}`,
    );
  }
  return {
    runId: nonNegativeInt(content.run_id, "run_id"),
    layer: nonNegativeInt(content.layer, "layer"),
    head: nonNegativeInt(content.head, "head"),
    seqLen,
    packing,
    scales: readFloat32LE(scaleBytes, seqLen),
    values,
  };
}

/**
 * Whether a `head` reply came without the binary buffers its `seq_len` and `packing` promise
 * (and without the text transport's base64): the host dropped them.
 */
export function headLacksBuffers(content: unknown, buffers: readonly unknown[]): boolean {
  if (!isRecord(content) || content.type !== "head") return false;
  if (typeof content.scales_b64 === "string" || typeof content.values_b64 === "string") return false;
  const seqLen = content.seq_len;
  const packing = content.packing;
  if (typeof seqLen !== "number" || !Number.isInteger(seqLen) || seqLen <= 0) return buffers.length < 2;
  if (packing !== "tril" && packing !== "full") return buffers.length < 2;
  return (
    buffers.length < 2 ||
    asBytes(buffers[0]).byteLength !== seqLen * 4 ||
    asBytes(buffers[1]).byteLength !== packedSize(packing, seqLen)
  );
}

/**
 * Parse a kernel → browser custom message; `null` for messages that are not about heads.
 * A malformed `head` message becomes a `head_error` for its request instead of throwing.
 */
export function decodeHeadMessage(content: unknown, buffers: readonly unknown[]): HeadMessage | null {
  if (!isRecord(content)) return null;
  if (content.type !== "head" && content.type !== "head_error" && content.type !== "head_superseded") return null;
  const id = content.request_id;
  const requestId = typeof id === "string" || (typeof id === "number" && Number.isFinite(id)) ? id : null;
  if (content.type === "head_superseded") return { type: "head_superseded", requestId };
  if (content.type === "head_error") {
    return { type: "head_error", requestId, message: String(content.message ?? "unknown error") };
  }
  try {
    return { type: "head", requestId, pattern: decodePattern(content, buffers) };
  } catch (err) {
    return { type: "head_error", requestId, message: err instanceof Error ? err.message : String(err) };
  }
}

/**
 * LUT levels (0…255) that colour the token view for `focus`: its row in query mode (what it
 * attends to), its column in key mode (who attends to it). -1 marks pairs a causal head never
 * computes (key after query).
 */
export function focusLevels(p: HeadPattern, mode: "query" | "key", focus: number): Int16Array {
  const out = new Int16Array(p.seqLen).fill(-1);
  for (let i = 0; i < p.seqLen; i++) {
    const [q, k] = mode === "query" ? [focus, i] : [i, focus];
    if (k < rowLength(p.packing, p.seqLen, q)) out[i] = level(p, q, k);
  }
  return out;
}

/** The key a query attends to most (query mode) or the query attending most to a key (key mode). */
export function strongest(p: HeadPattern, mode: "query" | "key", token: number): number {
  let best = token;
  let bestWeight = -1;
  for (let i = 0; i < p.seqLen; i++) {
    const w = mode === "query" ? weight(p, token, i) : weight(p, i, token);
    if (w > bestWeight) {
      best = i;
      bestWeight = w;
    }
  }
  return best;
}
