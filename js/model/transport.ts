/**
 * The transport (docs/wire.md, "Transport"). Data travels as binary buffers; some hosts drop them
 * (Colab's widget manager in its binary state, among others). Two exact checks find out:
 *
 * - **state**: the constant trait `binary_probe` must arrive as its 4 bytes;
 * - **messages**: a `head` reply must carry its two buffers, each of the length its `seq_len` and
 *   `packing` promise.
 *
 * When either fails, the view asks the kernel for the text transport (`{"type": "transport",
 * "mode": "text"}`), once per model. From then on the kernel mirrors every bytes trait as base64
 * in `text_data` and puts a head's bytes in its JSON (`scales_b64`, `values_b64`).
 */
import type { AnyModel } from "./anywidget";
import { asBytes } from "./bytes";

/** The bytes of the kernel's `binary_probe` trait: "hs", 1, 255. */
export const BINARY_PROBE = [0x68, 0x73, 0x01, 0xff] as const;
export const TEXT_TRANSPORT_HINT = "text transport: this host drops binary data";

/** Bytes from base64; empty for anything that is not valid base64. */
export function fromBase64(text: unknown): Uint8Array {
  if (typeof text !== "string") return new Uint8Array(0);
  try {
    const raw = atob(text);
    const out = new Uint8Array(raw.length);
    for (let i = 0; i < raw.length; i++) out[i] = raw.charCodeAt(i);
    return out;
  } catch {
    return new Uint8Array(0);
  }
}

export function usesText(model: AnyModel): boolean {
  return model.get("transport") === "text";
}

/** Whether the state's binary probe arrived intact (false: the host drops state buffers). */
export function stateCarriesBinary(model: AnyModel): boolean {
  const probe = asBytes(model.get("binary_probe"));
  return probe.length === BINARY_PROBE.length && BINARY_PROBE.every((b, i) => probe[i] === b);
}

/**
 * What a bytes trait's value is now, for change detection: the binary value itself, or its
 * base64 string under the text transport (the same object while it has not changed).
 */
export function bytesSource(model: AnyModel, name: string): unknown {
  if (!usesText(model)) return model.get(name);
  const data = model.get("text_data");
  return typeof data === "object" && data !== null ? (data as Record<string, unknown>)[name] : undefined;
}

/** Decoded base64 per model and trait, kept while the string is the same. */
const decoded = new WeakMap<object, Map<string, { text: string; bytes: Uint8Array }>>();

/**
 * A bytes trait: from `text_data` under the text transport, else the binary value itself.
 * `key` is a stable object for the model (decoding is cached per key and trait).
 */
export function bytesTrait(model: AnyModel, name: string, key: object = model): Uint8Array {
  if (!usesText(model)) return asBytes(model.get(name));
  const data = model.get("text_data");
  const text = typeof data === "object" && data !== null ? (data as Record<string, unknown>)[name] : undefined;
  if (typeof text !== "string") return new Uint8Array(0);
  let cache = decoded.get(key);
  if (cache === undefined) {
    cache = new Map();
    decoded.set(key, cache);
  }
  const hit = cache.get(name);
  if (hit !== undefined && hit.text === text) return hit.bytes;
  const bytes = fromBase64(text);
  cache.set(name, { text, bytes });
  return bytes;
}

/** Asks the kernel for the text transport, once per model. */
export class Transport {
  private asked = false;

  constructor(
    private readonly model: AnyModel,
    private readonly send: (message: object) => boolean,
  ) {}

  get text(): boolean {
    return usesText(this.model);
  }

  /** Switch to the text transport (no-op when already on it or already asked). */
  useText(reason: string): void {
    if (this.text || this.asked) return;
    this.asked = this.send({ type: "transport", mode: "text", reason });
  }

  /** Check the state's binary probe; on failure ask for the text transport. */
  checkState(): void {
    if (!this.text && !stateCarriesBinary(this.model)) this.useText("the binary probe trait arrived without its bytes");
  }
}
