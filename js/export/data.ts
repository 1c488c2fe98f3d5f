/**
 * The data of an offline HTML export (docs/wire.md, "Offline export"): the document's JSON, and
 * the decoding of its compressed bytes in the page with the browser's own `DecompressionStream`.
 *
 * Every binary blob is a raw deflate stream (RFC 1951), written by Python's zlib, in base64. A
 * head is three of them, one after the other:
 *
 * 1. its `seq_len` float32 row scales, byte-planed: all first bytes, then all second bytes, …
 *    (the exponent bytes of nearby rows repeat, which deflate finds);
 * 2. a bit mask with one bit per packed value, least significant bit first: 1 where the value is
 *    not 0 (most values of a long prompt's head are 0: a bit each costs less than a byte each,
 *    which is the least a deflate code spends on a symbol);
 * 3. the values that are not 0, in order.
 *
 * Decoded, a head is exactly what the kernel's `head` message carries (docs/wire.md).
 */
import { packedSize, type Packing } from "../model/head";

export const EXPORT_FORMAT = "headscope-export";
export const EXPORT_VERSION = 1;

/** One exported head: where its bytes are and how long each part is once decoded. */
export interface ExportedHead {
  layer: number;
  head: number;
  packing: Packing;
  /** Number of values that are not 0 (the length of part 3 once inflated). */
  nonzero: number;
  /** Compressed byte lengths of the three parts (scales, mask, values), in order. */
  parts: [number, number, number];
}

/** A compressed bytes trait: its deflated bytes in base64 and its length once inflated. */
export interface PackedBytes {
  size: number;
  data: string;
}

/** The JSON of `<script type="application/json" id="headscope-export-state">`. */
export interface ExportDocument {
  format: typeof EXPORT_FORMAT;
  version: number;
  /** Every JSON trait of docs/wire.md as the kernel would sync it. */
  traits: Record<string, unknown>;
  /** The bytes traits (`atlas`, `scores`, …), compressed. */
  bytes: Record<string, PackedBytes>;
  seq_len: number;
  heads: ExportedHead[];
  /** Heads of the run in all (exported or not), for the error a missing head gets. */
  total_heads: number;
}

/** The element id that holds head `(layer, head)`'s base64. */
export function headElementId(layer: number, head: number): string {
  return `headscope-head-${layer}-${head}`;
}

/** Bytes from base64 (whitespace allowed); throws on anything else. */
export function base64Bytes(text: string): Uint8Array {
  const raw = atob(text.replace(/\s+/g, ""));
  const out = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) out[i] = raw.charCodeAt(i);
  return out;
}

/** Inflate one raw deflate stream. */
export async function inflateRaw(bytes: Uint8Array): Promise<Uint8Array> {
  if (typeof DecompressionStream !== "function") {
    throw new Error("this browser cannot decompress the export (DecompressionStream is missing); open it in a current browser");
  }
  const copy = new Uint8Array(bytes.byteLength);
  copy.set(bytes);
  const stream = new Blob([copy.buffer]).stream().pipeThrough(new DecompressionStream("deflate-raw"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/** Inflate `packed` and check its length. */
export async function unpackBytes(packed: PackedBytes, name: string): Promise<Uint8Array> {
  const out = await inflateRaw(base64Bytes(packed.data));
  if (out.byteLength !== packed.size) {
    throw new Error(`${name} holds ${out.byteLength} bytes, expected ${packed.size}`);
  }
  return out;
}

/** Float32 bytes from their byte planes (plane `k` holds byte `k` of every value). */
export function unplane(planes: Uint8Array, count: number): Uint8Array {
  const out = new Uint8Array(count * 4);
  for (let k = 0; k < 4; k++) {
    const plane = k * count;
    for (let i = 0; i < count; i++) out[i * 4 + k] = planes[plane + i];
  }
  return out;
}

/** `size` values: `nonzero` in order where `mask` has a 1 bit (LSB first), 0 elsewhere. */
export function unmask(mask: Uint8Array, nonzero: Uint8Array, size: number): Uint8Array {
  if (mask.byteLength !== Math.ceil(size / 8)) {
    throw new Error(`the mask holds ${mask.byteLength} bytes, expected ${Math.ceil(size / 8)}`);
  }
  const out = new Uint8Array(size);
  let j = 0;
  for (let b = 0; b < mask.length; b++) {
    let bits = mask[b];
    if (bits === 0) continue;
    const base = b << 3;
    while (bits !== 0) {
      const low = bits & -bits;
      const index = base + 31 - Math.clz32(low);
      if (index >= size || j >= nonzero.length) throw new Error("the mask marks more values than the head holds");
      out[index] = nonzero[j++];
      bits ^= low;
    }
  }
  if (j !== nonzero.length) throw new Error(`the mask marks ${j} values, but ${nonzero.length} are stored`);
  return out;
}

/** A decoded head: the two buffers of a kernel `head` message. */
export interface HeadBytes {
  scales: Uint8Array;
  values: Uint8Array;
}

/** Decode one head from its base64 text (see the module comment). */
export async function decodeHead(text: string, entry: ExportedHead, seqLen: number): Promise<HeadBytes> {
  const bytes = base64Bytes(text);
  const [a, b, c] = entry.parts;
  if (a + b + c !== bytes.byteLength) {
    throw new Error(`layer ${entry.layer}, head ${entry.head}: ${bytes.byteLength} bytes stored, expected ${a + b + c}`);
  }
  const [planes, mask, nonzero] = await Promise.all([
    inflateRaw(bytes.subarray(0, a)),
    inflateRaw(bytes.subarray(a, a + b)),
    inflateRaw(bytes.subarray(a + b)),
  ]);
  if (planes.byteLength !== seqLen * 4) {
    throw new Error(`layer ${entry.layer}, head ${entry.head}: ${planes.byteLength} bytes of scales, expected ${seqLen * 4}`);
  }
  if (nonzero.byteLength !== entry.nonzero) {
    throw new Error(`layer ${entry.layer}, head ${entry.head}: ${nonzero.byteLength} values, expected ${entry.nonzero}`);
  }
  return { scales: unplane(planes, seqLen), values: unmask(mask, nonzero, packedSize(entry.packing, seqLen)) };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** The export document in `text`, checked for its shape; throws naming the problem. */
export function parseDocument(text: string): ExportDocument {
  const doc: unknown = JSON.parse(text);
  if (!isRecord(doc) || doc.format !== EXPORT_FORMAT) throw new Error("this is not a headscope export");
  if (doc.version !== EXPORT_VERSION) {
    throw new Error(`this export has format version ${String(doc.version)}; this page reads version ${EXPORT_VERSION}`);
  }
  if (!isRecord(doc.traits) || !isRecord(doc.bytes) || !Array.isArray(doc.heads)) throw new Error("the export's data is incomplete");
  const seqLen = doc.seq_len;
  if (typeof seqLen !== "number" || !Number.isInteger(seqLen) || seqLen <= 0) throw new Error("the export's seq_len is not a positive integer");
  return doc as unknown as ExportDocument;
}
