/**
 * A `[layer, head]` heatmap on one canvas (the patching effect), in the atlas's grid geometry:
 * a click or the arrow keys select a head. Values are coloured on a diverging scale from
 * `-range` to `range`.
 */
import { beginCanvas, h } from "./dom";
import { atlasCellOrigin, atlasHeadAt, atlasLayout, cellClientBox, moveSelection, sameValues, type AtlasLayout, type HeadRef } from "./grid";
import { cssColor } from "./lut";
import type { Palette } from "./palette";
import type { Box } from "./tooltip";
import { divergingLevel } from "../model/interventions";

export interface HeatmapEvents {
  select(ref: HeadRef): void;
  hover(ref: HeadRef | null, clientX: number, clientY: number): void;
}

export class HeatmapView {
  readonly el: HTMLElement;
  readonly canvas: HTMLCanvasElement;
  private readonly resize: ResizeObserver;
  private layout: AtlasLayout = atlasLayout(0, 0, 0);
  private values: Float32Array = new Float32Array(0);
  private lut: Uint8ClampedArray | null = null;
  private selected: HeadRef = { layer: 0, head: 0 };
  /** The box's content width, CSS px, as last observed (0 until it is laid out). */
  private available = 0;
  /** The canvas's client box, measured when the pointer last moved (before any write). */
  private pointerBox: Box | null = null;

  constructor(
    private readonly events: HeatmapEvents,
    private readonly palette: Palette,
    private readonly range = 1,
  ) {
    this.el = h("div", "hs-heatmap");
    this.canvas = h("canvas", "hs-heatmap-canvas");
    this.canvas.tabIndex = 0;
    this.el.append(this.canvas);
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
    this.resize = new ResizeObserver((entries) => {
      const width = entries.at(-1)?.contentRect.width ?? 0;
      if (width === this.available) return;
      this.available = width;
      this.draw();
    });
    this.resize.observe(this.el);
  }

  setData(values: Float32Array, nLayers: number, nHeads: number, lut: Uint8ClampedArray): void {
    const { layout } = this;
    if (sameValues(values, this.values) && lut === this.lut && layout.nLayers === nLayers && layout.nHeads === nHeads) return;
    this.values = values;
    this.lut = lut;
    this.layout = atlasLayout(nLayers, nHeads, this.available);
    this.draw();
  }

  setSelected(ref: HeadRef): void {
    if (ref.layer === this.selected.layer && ref.head === this.selected.head && this.canvas.hasAttribute("aria-label")) return;
    this.selected = ref;
    this.canvas.setAttribute(
      "aria-label",
      `Patching effect of every head: ${this.layout.nLayers} layers by ${this.layout.nHeads} heads. ` +
        `Selected: layer ${ref.layer}, head ${ref.head}. Arrow keys change the head.`,
    );
    this.draw();
  }

  /** The theme's colours changed. */
  repaint(): void {
    this.draw();
  }

  /** Value of a head, or NaN. */
  valueAt(ref: HeadRef): number {
    const v = this.values[ref.layer * this.layout.nHeads + ref.head];
    return v === undefined ? NaN : v;
  }

  /** The client box of a head's cell (the tooltip keeps clear of it). */
  cellClientBox(ref: HeadRef): Box {
    return cellClientBox(this.pointerBox ?? this.canvas.getBoundingClientRect(), this.layout, ref);
  }

  dispose(): void {
    this.resize.disconnect();
  }

  private draw(): void {
    const { nLayers, nHeads } = this.layout;
    this.layout = atlasLayout(nLayers, nHeads, this.available);
    const layout = this.layout;
    const ctx = beginCanvas(this.canvas, layout.width, layout.height);
    const lut = this.lut;
    if (nLayers === 0 || nHeads === 0 || lut === null || this.values.length === 0) return;
    const { raised, muted, font, accent } = this.palette.colours;
    for (let l = 0; l < nLayers; l++) {
      for (let hd = 0; hd < nHeads; hd++) {
        const { x, y } = atlasCellOrigin(layout, { layer: l, head: hd });
        const level = divergingLevel(this.values[l * nHeads + hd], this.range);
        ctx.fillStyle = level < 0 ? raised : cssColor(lut, level);
        ctx.fillRect(x, y, layout.cell, layout.cell);
      }
    }
    ctx.fillStyle = muted;
    ctx.font = `10px ${font}`;
    const step = layout.cell >= 14 ? 1 : layout.cell >= 8 ? 2 : 4;
    ctx.textAlign = "center";
    for (let hd = 0; hd < nHeads; hd += step) {
      const { x } = atlasCellOrigin(layout, { layer: 0, head: hd });
      ctx.fillText(String(hd), x + layout.cell / 2, layout.top - 5);
    }
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    for (let l = 0; l < nLayers; l += step) {
      const { y } = atlasCellOrigin(layout, { layer: l, head: 0 });
      ctx.fillText(String(l), layout.left - 6, y + layout.cell / 2);
    }
    ctx.textAlign = "left";
    ctx.textBaseline = "alphabetic";
    ctx.fillText("L\\H", 0, layout.top - 5);
    const { x, y } = atlasCellOrigin(layout, this.selected);
    ctx.strokeStyle = accent;
    ctx.lineWidth = 2;
    ctx.strokeRect(x - 1.5, y - 1.5, layout.cell + 3, layout.cell + 3);
  }

  private headAt(e: MouseEvent): HeadRef | null {
    const rect = this.canvas.getBoundingClientRect();
    this.pointerBox = rect;
    return atlasHeadAt(this.layout, e.clientX - rect.left, e.clientY - rect.top);
  }
}
