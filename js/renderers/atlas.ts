/**
 * The atlas: every head's thumbnail on ONE canvas (layer rows × head columns) with labelled
 * axes. An offscreen sheet holds all thumbnails at native size; the visible canvas scales them
 * into a grid. Hit-testing is arithmetic on {@link AtlasLayout}.
 */
import { beginCanvas, context2d, cssVar, h } from "./dom";
import { cssColor, levelOf } from "./lut";
import { paintAtlas } from "./paint";
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

/** Grid geometry that fits `nHeads` columns into `available` CSS px. */
export function atlasLayout(nLayers: number, nHeads: number, available: number): AtlasLayout {
  const raw = Math.floor((available - LEFT) / Math.max(1, nHeads));
  const gap = raw >= 14 ? 3 : 1;
  const cell = Math.max(6, Math.min(44, raw - gap));
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

/** The client box of cell `ref` of a grid drawn on `canvas`. */
export function cellClientBox(canvas: HTMLCanvasElement, layout: AtlasLayout, ref: HeadRef): Box {
  const rect = canvas.getBoundingClientRect();
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

/** Every `step`-th label keeps labels legible when cells are small. */
function labelStep(cell: number): number {
  return cell >= 14 ? 1 : cell >= 8 ? 2 : 4;
}

export interface AtlasEvents {
  select(ref: HeadRef): void;
  hover(ref: HeadRef | null, clientX: number, clientY: number): void;
}

export class AtlasView {
  readonly el: HTMLElement;
  readonly canvas: HTMLCanvasElement;
  private readonly sheet: HTMLCanvasElement;
  private readonly resize: ResizeObserver;
  private layout: AtlasLayout = atlasLayout(0, 0, 0);
  private selected: HeadRef = { layer: 0, head: 0 };
  private thumb = 0;
  private tint: { values: Float32Array; lut: Uint8ClampedArray } | null = null;

  constructor(private readonly events: AtlasEvents) {
    this.el = h("div", "hs-atlas");
    this.canvas = h("canvas", "hs-atlas-canvas");
    this.canvas.tabIndex = 0;
    this.sheet = document.createElement("canvas");
    this.el.append(this.canvas);
    this.bind();
    this.resize = new ResizeObserver(() => this.draw());
    this.resize.observe(this.el);
  }

  setData(atlas: Uint8Array, nLayers: number, nHeads: number, thumb: number, lut: Uint8ClampedArray): void {
    this.thumb = thumb;
    this.layout = atlasLayout(nLayers, nHeads, this.el.clientWidth);
    if (nLayers > 0 && nHeads > 0 && thumb > 0) {
      this.sheet.width = nHeads * thumb;
      this.sheet.height = nLayers * thumb;
      const ctx = context2d(this.sheet);
      const image = ctx.createImageData(this.sheet.width, this.sheet.height);
      paintAtlas(atlas, nLayers, nHeads, thumb, lut, image);
      ctx.putImageData(image, 0, 0);
    }
    this.draw();
  }

  /** Colour every cell by a score in [0, 1] (`[layer * nHeads + head]`), or stop (null). */
  setTint(values: Float32Array | null, lut: Uint8ClampedArray): void {
    this.tint = values === null ? null : { values, lut };
    this.draw();
  }

  setSelected(ref: HeadRef): void {
    this.selected = ref;
    this.canvas.setAttribute(
      "aria-label",
      `Head atlas: ${this.layout.nLayers} layers by ${this.layout.nHeads} heads. ` +
        `Selected: layer ${ref.layer}, head ${ref.head}. Arrow keys change the head.`,
    );
    this.draw();
  }

  /** The client box of a head's thumbnail (the tooltip keeps clear of it). */
  cellClientBox(ref: HeadRef): Box {
    return cellClientBox(this.canvas, this.layout, ref);
  }

  dispose(): void {
    this.resize.disconnect();
  }

  private draw(): void {
    const { nLayers, nHeads } = this.layout;
    this.layout = atlasLayout(nLayers, nHeads, this.el.clientWidth);
    const layout = this.layout;
    const ctx = beginCanvas(this.canvas, layout.width, layout.height);
    if (nLayers === 0 || nHeads === 0 || this.thumb === 0) return;
    this.drawThumbs(ctx);
    this.drawLabels(ctx);
    this.drawSelection(ctx);
  }

  private drawThumbs(ctx: CanvasRenderingContext2D): void {
    const { nLayers, nHeads, cell } = this.layout;
    const t = this.thumb;
    ctx.imageSmoothingEnabled = cell < t;
    ctx.imageSmoothingQuality = "medium";
    for (let l = 0; l < nLayers; l++) {
      for (let hd = 0; hd < nHeads; hd++) {
        const { x, y } = atlasCellOrigin(this.layout, { layer: l, head: hd });
        const score = this.tint?.values[l * nHeads + hd];
        if (this.tint !== null && score !== undefined && !Number.isNaN(score)) {
          // the score's colour fills the cell; the pattern stays faintly visible on top
          ctx.fillStyle = cssColor(this.tint.lut, levelOf(score));
          ctx.fillRect(x, y, cell, cell);
          ctx.globalAlpha = 0.3;
        }
        ctx.drawImage(this.sheet, hd * t, l * t, t, t, x, y, cell, cell);
        ctx.globalAlpha = 1;
      }
    }
  }

  private drawLabels(ctx: CanvasRenderingContext2D): void {
    const { nLayers, nHeads, cell, left, top } = this.layout;
    ctx.fillStyle = cssVar(this.el, "--hs-muted", "#6b7280");
    ctx.font = `10px ${cssVar(this.el, "--hs-font", "sans-serif")}`;
    const step = labelStep(cell);
    ctx.textAlign = "center";
    ctx.textBaseline = "alphabetic";
    for (let hd = 0; hd < nHeads; hd += step) {
      const { x } = atlasCellOrigin(this.layout, { layer: 0, head: hd });
      ctx.fillText(String(hd), x + cell / 2, top - 5);
    }
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    for (let l = 0; l < nLayers; l += step) {
      const { y } = atlasCellOrigin(this.layout, { layer: l, head: 0 });
      ctx.fillText(String(l), left - 6, y + cell / 2);
    }
    ctx.textAlign = "left";
    ctx.textBaseline = "alphabetic";
    ctx.fillText("L\\H", 0, top - 5);
  }

  private drawSelection(ctx: CanvasRenderingContext2D): void {
    const { cell } = this.layout;
    const { x, y } = atlasCellOrigin(this.layout, this.selected);
    ctx.strokeStyle = cssVar(this.el, "--hs-accent", "#e11d48");
    ctx.lineWidth = 2;
    ctx.strokeRect(x - 1.5, y - 1.5, cell + 3, cell + 3);
  }

  private headAt(e: MouseEvent): HeadRef | null {
    const rect = this.canvas.getBoundingClientRect();
    return atlasHeadAt(this.layout, e.clientX - rect.left, e.clientY - rect.top);
  }

  private bind(): void {
    this.canvas.addEventListener("click", (e) => {
      const ref = this.headAt(e);
      if (ref !== null) this.events.select(ref);
    });
    this.canvas.addEventListener("pointermove", (e) => this.events.hover(this.headAt(e), e.clientX, e.clientY));
    this.canvas.addEventListener("pointerleave", (e) => this.events.hover(null, e.clientX, e.clientY));
    this.canvas.addEventListener("keydown", (e) => {
      const next = moveSelection(this.selected, e.key, this.layout.nLayers, this.layout.nHeads);
      if (next === null) return;
      e.preventDefault();
      if (next.layer !== this.selected.layer || next.head !== this.selected.head) this.events.select(next);
    });
  }
}
