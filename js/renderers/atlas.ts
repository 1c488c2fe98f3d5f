/**
 * The atlas: every head's thumbnail on ONE canvas (layer rows × head columns) with labelled
 * axes. An offscreen sheet holds all thumbnails, max-pooled to the on-screen cell size when they
 * are larger; the visible canvas draws them into a grid. Hit-testing is arithmetic on
 * {@link AtlasLayout}.
 *
 * Cells never shrink below {@link MIN_ATLAS_CELL} CSS px: a grid that is then wider than the
 * panel (32 × 32 heads in a 300 px panel) scrolls inside its box, up to {@link MAX_ATLAS_HEIGHT}
 * px high, with its layer and head labels in strips that stay in view, and the selected head is
 * scrolled into view whenever it changes.
 */
import { beginCanvas, context2d, h } from "./dom";
import {
  atlasCellOrigin,
  atlasHeadAt,
  atlasLayout,
  cellClientBox,
  MAX_ATLAS_HEIGHT,
  MIN_ATLAS_CELL,
  moveSelection,
  sameValues,
  scrollToShow,
  type AtlasLayout,
  type HeadRef,
} from "./grid";
import { cssColor, levelOf } from "./lut";
import { paintAtlas, poolAtlas } from "./paint";
import type { Palette } from "./palette";
import type { Box } from "./tooltip";

export { atlasCellOrigin, atlasHeadAt, atlasLayout, cellClientBox, moveSelection, scrollToShow, type AtlasLayout, type HeadRef };

/** Every `step`-th label keeps labels legible when cells are small. */
function labelStep(cell: number): number {
  return cell >= 14 ? 1 : cell >= 8 ? 2 : 4;
}

export interface AtlasEvents {
  select(ref: HeadRef): void;
  hover(ref: HeadRef | null, clientX: number, clientY: number): void;
}

/** The thumbnails as given by the kernel, and the sheet drawn from them. */
interface Source {
  readonly atlas: Uint8Array;
  readonly thumb: number;
  readonly lut: Uint8ClampedArray;
  /** Side of one thumbnail on the sheet, device px (0: the sheet is not drawn yet). */
  sheetThumb: number;
}

export class AtlasView {
  /** The atlas's box: it scrolls when the grid is larger than the panel allows. */
  readonly el: HTMLElement;
  readonly canvas: HTMLCanvasElement;
  private readonly sheet: HTMLCanvasElement;
  /** Label strips that stay in view while the grid scrolls (shown only then). */
  private readonly headStrip: HTMLCanvasElement;
  private readonly layerStrip: HTMLCanvasElement;
  private readonly corner: HTMLCanvasElement;
  private readonly resize: ResizeObserver;
  /** The box's content width, CSS px, as last observed (0 until it is laid out). */
  private available = 0;
  private layout: AtlasLayout = atlasLayout(0, 0, 0, MIN_ATLAS_CELL);
  private selected: HeadRef = { layer: 0, head: 0 };
  private source: Source | null = null;
  private tint: { values: Float32Array; lut: Uint8ClampedArray } | null = null;
  /** The canvas's client box, measured when the pointer last moved (before any write). */
  private pointerBox: Box | null = null;
  private revealQueued = false;

  constructor(
    private readonly events: AtlasEvents,
    private readonly palette: Palette,
  ) {
    this.el = h("div", "hs-atlas");
    this.el.style.maxHeight = `${MAX_ATLAS_HEIGHT}px`;
    this.canvas = h("canvas", "hs-atlas-canvas");
    this.canvas.tabIndex = 0;
    this.sheet = document.createElement("canvas");
    this.headStrip = h("canvas", "hs-atlas-strip hs-atlas-heads");
    this.layerStrip = h("canvas", "hs-atlas-strip hs-atlas-layers");
    this.corner = h("canvas", "hs-atlas-strip hs-atlas-corner");
    for (const strip of [this.headStrip, this.layerStrip, this.corner]) strip.setAttribute("aria-hidden", "true");
    const grid = h("div", "hs-atlas-grid");
    grid.append(this.canvas, this.headStrip, this.layerStrip, this.corner);
    this.el.append(grid);
    this.bind();
    this.resize = new ResizeObserver((entries) => {
      const width = entries.at(-1)?.contentRect.width ?? 0;
      if (width === this.available) return;
      this.available = width;
      this.draw();
      this.queueReveal();
    });
    this.resize.observe(this.el);
  }

  setData(atlas: Uint8Array, nLayers: number, nHeads: number, thumb: number, lut: Uint8ClampedArray): void {
    const old = this.source;
    const same = old !== null && old.lut === lut && old.thumb === thumb && sameBytes(old.atlas, atlas) &&
      this.layout.nLayers === nLayers && this.layout.nHeads === nHeads;
    // the same thumbnails in the same colours (a redraw for new theme colours) keep their sheet
    if (!same) this.source = nLayers > 0 && nHeads > 0 && thumb > 0 ? { atlas, thumb, lut, sheetThumb: 0 } : null;
    this.layout = atlasLayout(nLayers, nHeads, this.available, MIN_ATLAS_CELL);
    this.draw();
    this.queueReveal();
  }

  /** Colour every cell by a score in [0, 1] (`[layer * nHeads + head]`), or stop (null). */
  setTint(values: Float32Array | null, lut: Uint8ClampedArray): void {
    const same = values === null ? this.tint === null : this.tint !== null && this.tint.lut === lut && sameValues(this.tint.values, values);
    if (same) return;
    this.tint = values === null ? null : { values, lut };
    this.draw();
  }

  setSelected(ref: HeadRef): void {
    const label =
      `Head atlas: ${this.layout.nLayers} layers by ${this.layout.nHeads} heads. ` +
      `Selected: layer ${ref.layer}, head ${ref.head}. Arrow keys change the head.`;
    if (this.canvas.getAttribute("aria-label") !== label) this.canvas.setAttribute("aria-label", label);
    if (ref.layer === this.selected.layer && ref.head === this.selected.head) return;
    this.selected = ref;
    this.draw();
    this.queueReveal();
  }

  /** The client box of a head's thumbnail (the tooltip keeps clear of it). */
  cellClientBox(ref: HeadRef): Box {
    return cellClientBox(this.pointerBox ?? this.canvas.getBoundingClientRect(), this.layout, ref);
  }

  dispose(): void {
    this.resize.disconnect();
  }

  /** Whether the grid is larger than its box (it scrolls, and the label strips show). */
  private get scrolls(): boolean {
    const { width, height } = this.layout;
    return this.available > 0 && (width > this.available || height > MAX_ATLAS_HEIGHT);
  }

  private draw(): void {
    const { nLayers, nHeads } = this.layout;
    this.layout = atlasLayout(nLayers, nHeads, this.available, MIN_ATLAS_CELL);
    const layout = this.layout;
    const ctx = beginCanvas(this.canvas, layout.width, layout.height);
    const scrolls = this.scrolls && this.source !== null;
    this.el.classList.toggle("hs-atlas-scrolls", scrolls);
    if (this.source === null) return;
    this.drawThumbs(ctx, this.source);
    this.drawLabels(ctx, "both");
    this.drawSelection(ctx);
    if (scrolls) {
      this.drawLabels(beginCanvas(this.headStrip, layout.width, layout.top), "heads");
      this.drawLabels(beginCanvas(this.layerStrip, layout.left, layout.height), "layers");
      this.drawLabels(beginCanvas(this.corner, layout.left, layout.top), "corner");
    }
  }

  /** The sheet at the cell's device size: thumbnails max-pooled down, or as sent when smaller. */
  private sheetFor(source: Source): number {
    const { nLayers, nHeads, cell } = this.layout;
    const device = Math.max(1, Math.round(cell * (window.devicePixelRatio || 1)));
    const t = Math.min(device, source.thumb);
    if (t === source.sheetThumb) return t;
    const bytes = t < source.thumb ? poolAtlas(source.atlas, nLayers, nHeads, source.thumb, t) : source.atlas;
    this.sheet.width = nHeads * t;
    this.sheet.height = nLayers * t;
    const ctx = context2d(this.sheet);
    const image = ctx.createImageData(this.sheet.width, this.sheet.height);
    paintAtlas(bytes, nLayers, nHeads, t, source.lut, image);
    ctx.putImageData(image, 0, 0);
    source.sheetThumb = t;
    return t;
  }

  private drawThumbs(ctx: CanvasRenderingContext2D, source: Source): void {
    const { nLayers, nHeads, cell } = this.layout;
    const t = this.sheetFor(source);
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

  /**
   * Head numbers along the top and layer numbers down the left (every `step`-th, and always the
   * selected head's and layer's, in the accent colour), on the grid or on one label strip.
   */
  private drawLabels(ctx: CanvasRenderingContext2D, which: "both" | "heads" | "layers" | "corner"): void {
    const { nLayers, nHeads, cell, left, top } = this.layout;
    const { muted, accent, font } = this.palette.colours;
    const step = labelStep(cell);
    const label = (text: string, x: number, y: number, on: boolean): void => {
      ctx.fillStyle = on ? accent : muted;
      ctx.font = `${on ? "600 " : ""}10px ${font}`;
      ctx.fillText(text, x, y);
    };
    if (which === "both" || which === "heads") {
      ctx.textAlign = "center";
      ctx.textBaseline = "alphabetic";
      for (let hd = 0; hd < nHeads; hd++) {
        const on = hd === this.selected.head;
        if (hd % step !== 0 && !on) continue;
        const { x } = atlasCellOrigin(this.layout, { layer: 0, head: hd });
        label(String(hd), x + cell / 2, top - 5, on);
      }
    }
    if (which === "both" || which === "layers") {
      ctx.textAlign = "right";
      ctx.textBaseline = "middle";
      for (let l = 0; l < nLayers; l++) {
        const on = l === this.selected.layer;
        if (l % step !== 0 && !on) continue;
        const { y } = atlasCellOrigin(this.layout, { layer: l, head: 0 });
        label(String(l), left - 6, y + cell / 2, on);
      }
    }
    if (which === "both" || which === "corner") {
      ctx.textAlign = "left";
      ctx.textBaseline = "alphabetic";
      label("L\\H", 0, top - 5, false);
    }
  }

  private drawSelection(ctx: CanvasRenderingContext2D): void {
    const { cell } = this.layout;
    const { x, y } = atlasCellOrigin(this.layout, this.selected);
    ctx.strokeStyle = this.palette.colours.accent;
    ctx.lineWidth = 2;
    ctx.strokeRect(x - 1.5, y - 1.5, cell + 3, cell + 3);
  }

  /** Scroll the selected head into view at the next frame (read, then write: no forced layout). */
  private queueReveal(): void {
    if (this.revealQueued || !this.scrolls) return;
    this.revealQueued = true;
    requestAnimationFrame(() => {
      this.revealQueued = false;
      this.reveal();
    });
  }

  private reveal(): void {
    const el = this.el;
    if (!this.scrolls || !el.isConnected) return;
    const { x, y } = atlasCellOrigin(this.layout, this.selected);
    const { cell, left, top } = this.layout;
    const [scrollLeft, scrollTop, width, height] = [el.scrollLeft, el.scrollTop, el.clientWidth, el.clientHeight];
    const toLeft = scrollToShow(scrollLeft, width, left, x, cell);
    const toTop = scrollToShow(scrollTop, height, top, y, cell);
    if (toLeft !== scrollLeft) el.scrollLeft = toLeft;
    if (toTop !== scrollTop) el.scrollTop = toTop;
  }

  /** The head under the pointer; none over the label strips of a scrolled grid. */
  private headAt(e: MouseEvent): HeadRef | null {
    const rect = this.canvas.getBoundingClientRect();
    this.pointerBox = rect;
    if (this.scrolls) {
      const port = this.el.getBoundingClientRect();
      if (e.clientX - port.left < this.layout.left || e.clientY - port.top < this.layout.top) return null;
    }
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

/** Whether two byte views show the same bytes of the same buffer (a trait read again). */
function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a === b || (a.buffer === b.buffer && a.byteOffset === b.byteOffset && a.byteLength === b.byteLength);
}
