/**
 * The visible square window of a `seqLen × seqLen` pattern: cells `[x0, x0 + size)` (key_pos)
 * by `[y0, y0 + size)` (query_pos). All hit-testing is arithmetic on this window.
 */
import type { Cell } from "../state/view-state";

export interface Viewport {
  readonly x0: number;
  readonly y0: number;
  readonly size: number;
}

export const MIN_ZOOM_CELLS = 8;

export function fullView(seqLen: number): Viewport {
  return { x0: 0, y0: 0, size: Math.max(1, seqLen) };
}

export function isZoomed(v: Viewport, seqLen: number): boolean {
  return v.size < seqLen;
}

function clampView(x0: number, y0: number, size: number, seqLen: number): Viewport {
  const s = Math.max(Math.min(seqLen, MIN_ZOOM_CELLS), Math.min(seqLen, Math.round(size)));
  const clamp = (v: number): number => Math.max(0, Math.min(seqLen - s, Math.round(v)));
  return { x0: clamp(x0), y0: clamp(y0), size: s };
}

/**
 * Zoom by `factor` (< 1 zooms in) keeping the fractional point `(fx, fy)` of the window
 * (0…1 across, 0…1 down) over the same cell.
 */
export function zoom(v: Viewport, seqLen: number, factor: number, fx = 0.5, fy = 0.5): Viewport {
  const size = Math.max(Math.min(seqLen, MIN_ZOOM_CELLS), Math.min(seqLen, Math.round(v.size * factor)));
  const px = v.x0 + fx * v.size;
  const py = v.y0 + fy * v.size;
  return clampView(px - fx * size, py - fy * size, size, seqLen);
}

/** Move the window by whole cells. */
export function pan(v: Viewport, seqLen: number, dx: number, dy: number): Viewport {
  return clampView(v.x0 + dx, v.y0 + dy, v.size, seqLen);
}

/** Cell under point `(x, y)` of a box `width × height` that shows the window; null outside. */
export function cellAt(v: Viewport, width: number, height: number, x: number, y: number): Cell | null {
  if (width <= 0 || height <= 0 || x < 0 || y < 0 || x >= width || y >= height) return null;
  const key = v.x0 + Math.min(v.size - 1, Math.floor((x / width) * v.size));
  const query = v.y0 + Math.min(v.size - 1, Math.floor((y / height) * v.size));
  return { query, key };
}

/** The box (in the same units as `width`/`height`) that cell `(query, key)` covers, or null. */
export function cellBox(
  v: Viewport,
  width: number,
  height: number,
  cell: Cell,
): { x: number; y: number; w: number; h: number } | null {
  const col = cell.key - v.x0;
  const row = cell.query - v.y0;
  if (col < 0 || row < 0 || col >= v.size || row >= v.size) return null;
  const w = width / v.size;
  const h = height / v.size;
  return { x: col * w, y: row * h, w, h };
}

/** Steps between axis labels: every label, then every 2nd, 5th, 10th, 20th, 50th… */
const NICE = [1, 2, 5];

/**
 * Label every `step`-th position so that labels are at least `minPitch` CSS px apart when one
 * position is `pitch` px.
 */
export function labelStep(pitch: number, minPitch: number): number {
  if (!(pitch > 0)) return Infinity;
  const need = minPitch / pitch;
  for (let scale = 1; ; scale *= 10) {
    for (const n of NICE) if (n * scale >= need) return n * scale;
  }
}

/** Positions in `[start, start + size)` that get a label: the multiples of `step`. */
export function labelPositions(start: number, size: number, step: number): number[] {
  if (!Number.isFinite(step)) return [];
  const out: number[] = [];
  for (let i = Math.ceil(start / step) * step; i < start + size; i += step) out.push(i);
  return out;
}
