/** Pixel filling through the colour LUT: one head pattern, and the whole atlas sheet. */
import { rowLength, rowStart, type HeadPattern } from "../model/head";

export interface Pixels {
  readonly width: number;
  readonly height: number;
  readonly data: Uint8ClampedArray;
}

function put(data: Uint8ClampedArray, at: number, lut: Uint8ClampedArray, index: number): void {
  const o = index * 4;
  data[at] = lut[o];
  data[at + 1] = lut[o + 1];
  data[at + 2] = lut[o + 2];
  data[at + 3] = 255;
}

/** Fill `out` (`seqLen × seqLen`) with the pattern; pixel `(key_pos, query_pos)`. */
export function paintPattern(p: HeadPattern, lut: Uint8ClampedArray, out: Pixels): void {
  if (out.width !== p.seqLen || out.height !== p.seqLen) {
    throw new Error(`pattern needs ${p.seqLen}×${p.seqLen} pixels, got ${out.width}×${out.height}`);
  }
  const { data } = out;
  for (let q = 0; q < p.seqLen; q++) {
    const start = rowStart(p.packing, p.seqLen, q);
    const len = rowLength(p.packing, p.seqLen, q);
    const scale = p.scales[q];
    let at = q * p.seqLen * 4;
    for (let k = 0; k < p.seqLen; k++, at += 4) {
      const level = k < len ? Math.min(255, Math.round(p.values[start + k] * scale)) : 0;
      put(data, at, lut, level);
    }
  }
}

/** Offset in the atlas bytes of thumbnail `(layer, head)`: C order `[layer, head, qbin, kbin]`. */
export function atlasOffset(nHeads: number, thumb: number, layer: number, head: number): number {
  return (layer * nHeads + head) * thumb * thumb;
}

/**
 * Fill `out` (`nHeads·T` wide, `nLayers·T` high) with every thumbnail: head `(l, h)` at
 * `(h·T, l·T)`. Atlas values are already LUT indices (`round(255 · max weight in the bin)`).
 * An atlas shorter than the geometry promises (dropped while no view showed the widget, or not
 * arrived yet) leaves `out` blank and returns false; it is drawn once its bytes arrive.
 */
export function paintAtlas(
  atlas: Uint8Array,
  nLayers: number,
  nHeads: number,
  thumb: number,
  lut: Uint8ClampedArray,
  out: Pixels,
): boolean {
  if (atlas.length < nLayers * nHeads * thumb * thumb) {
    out.data.fill(0);
    return false;
  }
  const { data, width } = out;
  for (let l = 0; l < nLayers; l++) {
    for (let h = 0; h < nHeads; h++) {
      const base = atlasOffset(nHeads, thumb, l, h);
      for (let qb = 0; qb < thumb; qb++) {
        let at = ((l * thumb + qb) * width + h * thumb) * 4;
        const row = base + qb * thumb;
        for (let kb = 0; kb < thumb; kb++, at += 4) put(data, at, lut, atlas[row + kb]);
      }
    }
  }
  return true;
}

/**
 * Every thumbnail max-pooled from `thumb × thumb` down to `size × size` (`size < thumb`), in the
 * same `[layer, head, qbin, kbin]` order. Drawn small, a thumbnail keeps its thin diagonals this
 * way; scaling by the canvas would average them away.
 */
export function poolAtlas(atlas: Uint8Array, nLayers: number, nHeads: number, thumb: number, size: number): Uint8Array {
  if (!(size >= 1 && size < thumb)) throw new Error(`cannot pool ${thumb}-px thumbnails to ${size} px`);
  const out = new Uint8Array(nLayers * nHeads * size * size);
  // source bins [from[i], to[i]) of output bin i: every source bin lands in at least one
  const from = new Int32Array(size);
  const to = new Int32Array(size);
  for (let i = 0; i < size; i++) {
    from[i] = Math.floor((i * thumb) / size);
    to[i] = Math.max(from[i] + 1, Math.ceil(((i + 1) * thumb) / size));
  }
  for (let head = 0; head < nLayers * nHeads; head++) {
    const src = head * thumb * thumb;
    const dst = head * size * size;
    for (let i = 0; i < size; i++) {
      for (let j = 0; j < size; j++) {
        let best = 0;
        for (let q = from[i]; q < to[i]; q++) {
          const row = src + q * thumb;
          for (let k = from[j]; k < to[j]; k++) if (atlas[row + k] > best) best = atlas[row + k];
        }
        out[dst + i * size + j] = best;
      }
    }
  }
  return out;
}
