/**
 * A `[layer, head]` heatmap on one canvas (the patching effect), in the atlas's grid geometry:
 * a click or the arrow keys select a head. Values are coloured on a diverging scale from
 * `-range` to `range`.
 */
import { atlasCellOrigin, atlasHeadAt, atlasLayout, cellClientBox, moveSelection, type AtlasLayout, type HeadRef } from "./atlas";
import { beginCanvas, cssVar, h } from "./dom";
import { cssColor } from "./lut";
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

  constructor(private readonly events: HeatmapEvents, private readonly range = 1) {
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
    this.resize = new ResizeObserver(() => this.draw());
    this.resize.observe(this.el);
  }

  setData(values: Float32Array, nLayers: number, nHeads: number, lut: Uint8ClampedArray): void {
    this.values = values;
    this.lut = lut;
    this.layout = atlasLayout(nLayers, nHeads, this.el.clientWidth);
    this.draw();
  }

  setSelected(ref: HeadRef): void {
    this.selected = ref;
    this.canvas.setAttribute(
      "aria-label",
      `Patching effect of every head: ${this.layout.nLayers} layers by ${this.layout.nHeads} heads. ` +
        `Selected: layer ${ref.layer}, head ${ref.head}. Arrow keys change the head.`,
    );
    this.draw();
  }

  /** Value of a head, or NaN. */
  valueAt(ref: HeadRef): number {
    const v = this.values[ref.layer * this.layout.nHeads + ref.head];
    return v === undefined ? NaN : v;
  }

  /** The client box of a head's cell (the tooltip keeps clear of it). */
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
    const lut = this.lut;
    if (nLayers === 0 || nHeads === 0 || lut === null) return;
    for (let l = 0; l < nLayers; l++) {
      for (let hd = 0; hd < nHeads; hd++) {
        const { x, y } = atlasCellOrigin(layout, { layer: l, head: hd });
        const level = divergingLevel(this.values[l * nHeads + hd], this.range);
        ctx.fillStyle = level < 0 ? cssVar(this.el, "--hs-raised", "#eef0f4") : cssColor(lut, level);
        ctx.fillRect(x, y, layout.cell, layout.cell);
      }
    }
    ctx.fillStyle = cssVar(this.el, "--hs-muted", "#6b7280");
    ctx.font = `10px ${cssVar(this.el, "--hs-font", "sans-serif")}`;
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
    ctx.strokeStyle = cssVar(this.el, "--hs-accent", "#e11d48");
    ctx.lineWidth = 2;
    ctx.strokeRect(x - 1.5, y - 1.5, layout.cell + 3, layout.cell + 3);
  }

  private headAt(e: MouseEvent): HeadRef | null {
    const rect = this.canvas.getBoundingClientRect();
    return atlasHeadAt(this.layout, e.clientX - rect.left, e.clientY - rect.top);
  }
}
