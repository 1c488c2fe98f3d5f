/** Byte views over the binary payloads that the host hands us (DataView, ArrayBuffer, typed array). */

/** A `Uint8Array` over `value`'s bytes without copying, honouring a DataView's `byteOffset`. */
export function asBytes(value: unknown): Uint8Array {
  if (value instanceof Uint8Array) return value;
  if (ArrayBuffer.isView(value)) {
    return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  }
  if (value instanceof ArrayBuffer) return new Uint8Array(value);
  return new Uint8Array(0);
}

/** `count` little-endian float32 values read from `bytes` (any alignment). */
export function readFloat32LE(bytes: Uint8Array, count: number): Float32Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) out[i] = view.getFloat32(i * 4, true);
  return out;
}
