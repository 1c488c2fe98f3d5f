/**
 * The geometry of a `[layer, head]` grid of cells with labelled axes (the atlas and the patching
 * heatmap): placement, hit-testing, keyboard moves and scrolling, all arithmetic.
 */
import type { Box } from "./tooltip";

export interface AtlasLayout {
  readonly nLayers: number;
  readonly nHeads: number;
  /** Left margin (layer labels) and top margin (head labels), CSS px. */
  readonly left: number;
  readonly top: number;
  readonly cell: number;
  readonly gap: number;
  readonly width: number;
  readonly height: number;
}

export interface HeadRef {
  readonly layer: number;
  readonly head: number;
}

const LEFT = 26;
const TOP = 18;
/** The atlas's smallest cell, CSS px: a 38-px thumbnail still shows its diagonals at this size. */
export const MIN_ATLAS_CELL = 12;
/** The tallest the atlas's box grows before it scrolls, CSS px. */
export const MAX_ATLAS_HEIGHT = 400;

/**
 * Grid geometry that fits `nHeads` columns into `available` CSS px, with cells of at least
 * `minCell` px (the grid is then wider than `available`).
 */
export function atlasLayout(nLayers: number, nHeads: number, available: number, minCell = 6): AtlasLayout {
  const raw = Math.floor((available - LEFT) / Math.max(1, nHeads));
  const gap = raw >= 14 ? 3 : 1;
  const cell = Math.max(minCell, Math.min(44, raw - gap));
  return {
    nLayers,
    nHeads,
    left: LEFT,
    top: TOP,
    cell,
    gap,
    width: LEFT + nHeads * (cell + gap),
    height: TOP + nLayers * (cell + gap),
  };
}

/** The head under CSS point `(x, y)` of the canvas, or null (margins and outside). */
export function atlasHeadAt(layout: AtlasLayout, x: number, y: number): HeadRef | null {
  const pitch = layout.cell + layout.gap;
  const head = Math.floor((x - layout.left) / pitch);
  const layer = Math.floor((y - layout.top) / pitch);
  if (x < layout.left || y < layout.top || head >= layout.nHeads || layer >= layout.nLayers) return null;
  return { layer, head };
}

/** Top-left CSS point of a head's thumbnail. */
export function atlasCellOrigin(layout: AtlasLayout, ref: HeadRef): { x: number; y: number } {
  const pitch = layout.cell + layout.gap;
  return { x: layout.left + ref.head * pitch, y: layout.top + ref.layer * pitch };
}

/** The client box of cell `ref` of a grid drawn in the client box `rect` (its canvas's). */
export function cellClientBox(rect: Box, layout: AtlasLayout, ref: HeadRef): Box {
  const { x, y } = atlasCellOrigin(layout, ref);
  return { left: rect.left + x, top: rect.top + y, right: rect.left + x + layout.cell, bottom: rect.top + y + layout.cell };
}

/** Selection after an arrow key: left/right move the head, up/down the layer; clamped. */
export function moveSelection(ref: HeadRef, key: string, nLayers: number, nHeads: number): HeadRef | null {
  const delta: Record<string, [number, number]> = {
    ArrowLeft: [0, -1],
    ArrowRight: [0, 1],
    ArrowUp: [-1, 0],
    ArrowDown: [1, 0],
  };
  const d = delta[key];
  if (d === undefined) return null;
  const layer = Math.max(0, Math.min(nLayers - 1, ref.layer + d[0]));
  const head = Math.max(0, Math.min(nHeads - 1, ref.head + d[1]));
  return { layer, head };
}

/**
 * The scroll offset along one axis that shows `[start, start + size)` of the grid in a window
 * `view` long whose first `margin` px are covered by a label strip; `scroll` when it shows already.
 */
export function scrollToShow(scroll: number, view: number, margin: number, start: number, size: number, pad = 4): number {
  const low = start - pad - margin;
  const high = start + size + pad - view;
  if (scroll > low) return Math.max(0, low);
  if (scroll < high) return Math.max(0, Math.min(low, high));
  return scroll;
}

/** Whether two per-head value arrays hold the same values (NaN equal to NaN). */
export function sameValues(a: Float32Array, b: Float32Array): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) return false;
  return true;
}
