/**
 * The pattern view: the selected head's `query_pos × key_pos` matrix. A full-resolution
 * offscreen canvas holds one ImageData painted through the LUT; the visible canvas shows the
 * zoom window at native resolution (scaled by CSS with `image-rendering: pixelated`); an overlay
 * canvas carries the crosshair. Hit-testing is arithmetic on the {@link Viewport}.
 *
 * Token labels run down the left (queries) and along the top (keys) of the zoom window: every
 * token when there is room, else every 2nd, 5th, 10th… so that labels never crowd. They are DOM
 * text (`textContent`, through the shared display transform) placed in percent of the window.
 *
 * Nothing on the hover path reads layout after writing: the overlay's size comes from a
 * ResizeObserver, its client box is measured when a pointer event starts, and the accent colour
 * comes from the {@link Palette}. Painted heads are kept ({@link keptHeads}), so a switch back
 * to one is a `putImageData`; `data-painted` on the view says which it was ("kept" or "lut").
 */
import type { HeadPattern } from "../model/head";
import type { Cell, Mode } from "../state/view-state";
import { button, context2d, fitToBox, h } from "./dom";
import { Legend } from "./legend";
import { keptHeads } from "./painted";
import type { Palette } from "./palette";
import { displayToken } from "./text";
import type { Box } from "./tooltip";
import { cellAt, cellBox, fullView, isZoomed, labelPositions, labelStep, pan, zoom, type Viewport } from "./viewport";

export interface PatternEvents {
  point(cell: Cell | null, clientX: number, clientY: number): void;
  click(cell: Cell): void;
}

export interface Marks {
  hoverCell: Cell | null;
  focus: number | null;
  mode: Mode;
}

const ZOOM_STEP = 0.5;
/** Closest distance between two axis labels, CSS px (the labels are 11 px text). */
const LABEL_PITCH = 11;
/** Smallest box the tooltip keeps clear around a hovered cell, CSS px. */
const MIN_CELL_BOX = 12;

/** One axis of token labels: the element, its labels by position, and the pointer's label. */
interface Axis {
  readonly el: HTMLElement;
  labels: Map<number, HTMLElement>;
  /** The hovered or focused position's label, where thinning left that position out. */
  readonly extra: HTMLElement;
}

export class PatternView {
  readonly el: HTMLElement;
  private readonly base: HTMLCanvasElement;
  private readonly overlay: HTMLCanvasElement;
  private readonly full: HTMLCanvasElement;
  private readonly legend: Legend;
  private readonly range: HTMLElement;
  private readonly resetButton: HTMLButtonElement;
  private readonly resize: ResizeObserver;
  private readonly queryAxis: Axis;
  private readonly keyAxis: Axis;
  /** What the labels show now (window, step, tokens), to rebuild them only when it changes. */
  private labelled = "";
  private tokens: readonly string[] = [];
  /** Bumped when the axis tokens change: new tokens may sit in the same window. */
  private tokensVersion = 0;
  private pattern: HeadPattern | null = null;
  /** The shown head's pixels; {@link full} holds them too once {@link fullStale} is false. */
  private image: ImageData | null = null;
  private fullStale = true;
  private readonly kept = keptHeads();
  private legendLut: Uint8ClampedArray | null = null;
  private view: Viewport = fullView(1);
  private marks: Marks = { hoverCell: null, focus: null, mode: "query" };
  private drag: { x: number; y: number; view: Viewport; moved: boolean } | null = null;
  /** The overlay's CSS size, from the ResizeObserver (never read on the hover path). */
  private size = { width: 0, height: 0 };
  /** The overlay's client box, measured when the current pointer event started. */
  private pointerBox: DOMRect | null = null;

  constructor(
    private readonly events: PatternEvents,
    private readonly palette: Palette,
  ) {
    this.el = h("section", "hs-pattern");
    this.base = h("canvas", "hs-pattern-base");
    this.overlay = h("canvas", "hs-pattern-overlay");
    this.overlay.tabIndex = 0;
    this.full = document.createElement("canvas");
    this.legend = new Legend("weight");
    this.range = h("span", "hs-range");
    this.resetButton = button("hs-zoom-reset", "Reset", () => this.setView(fullView(this.seqLen)), "Reset zoom");

    const stage = h("div", "hs-pattern-stage");
    stage.append(this.base, this.overlay);
    this.queryAxis = { el: h("div", "hs-axis hs-axis-query"), labels: new Map(), extra: h("span", "hs-axis-label hs-axis-on hs-axis-extra") };
    this.keyAxis = { el: h("div", "hs-axis hs-axis-key"), labels: new Map(), extra: h("span", "hs-axis-label hs-axis-on hs-axis-extra") };
    const corner = h("div", "hs-axis-corner");
    corner.append(h("span", "hs-axis-name hs-axis-name-key", "key →"), h("span", "hs-axis-name hs-axis-name-query", "query ↓"));
    for (const el of [this.queryAxis.el, this.keyAxis.el, corner]) el.setAttribute("aria-hidden", "true");
    const figure = h("div", "hs-pattern-figure");
    figure.append(corner, this.keyAxis.el, this.queryAxis.el, stage, this.legend.el);
    const toolbar = h("div", "hs-pattern-toolbar");
    toolbar.append(
      button("hs-zoom-in", "+", () => this.zoomBy(ZOOM_STEP), "Zoom in"),
      button("hs-zoom-out", "−", () => this.zoomBy(1 / ZOOM_STEP), "Zoom out"),
      this.resetButton,
      this.range,
    );
    this.el.append(toolbar, figure);

    this.bindPointer();
    this.resize = new ResizeObserver((entries) => {
      const box = entries.at(-1)?.contentRect;
      if (box === undefined) return;
      this.size = { width: box.width, height: box.height };
      this.drawOverlay();
    });
    this.resize.observe(this.overlay);
  }

  private get seqLen(): number {
    return this.pattern?.seqLen ?? 1;
  }

  /**
   * Paint a new head (LUT colours) and keep the zoom when the length is unchanged. `tokens`
   * label the axes (none when their number is not the pattern's size).
   */
  setPattern(pattern: HeadPattern, lut: Uint8ClampedArray, label: string, tokens: readonly string[]): void {
    const sameLength = this.pattern !== null && this.pattern.seqLen === pattern.seqLen;
    this.pattern = pattern;
    const axisTokens = tokens.length === pattern.seqLen ? tokens : [];
    if (!sameStrings(axisTokens, this.tokens)) this.tokensVersion++;
    this.tokens = axisTokens;
    const { image, kept } = this.kept.paint(pattern, lut);
    this.image = image;
    this.fullStale = true;
    this.el.dataset.painted = kept ? "kept" : "lut";
    if (lut !== this.legendLut) {
      this.legendLut = lut;
      this.legend.paint(lut);
    }
    this.overlay.setAttribute(
      "aria-label",
      `Attention pattern of ${label}: ${pattern.seqLen} query rows by ${pattern.seqLen} key columns. ` +
        "Plus and minus zoom, arrow keys pan, 0 resets.",
    );
    this.setView(sameLength ? this.view : fullView(pattern.seqLen));
  }

  /** The theme's colours changed (the accent of the crosshair). */
  repaint(): void {
    this.drawOverlay();
  }

  setLoading(loading: boolean): void {
    this.el.classList.toggle("hs-loading", loading);
    this.el.setAttribute("aria-busy", String(loading));
  }

  setMarks(marks: Marks): void {
    this.marks = marks;
    this.drawOverlay();
  }

  /** The client box of `cell` (at least {@link MIN_CELL_BOX} px around the pointer), for the tooltip. */
  cellClientBox(cell: Cell, clientX: number, clientY: number): Box {
    const rect = this.pointerBox ?? this.overlay.getBoundingClientRect();
    const box = cellBox(this.view, rect.width, rect.height, cell);
    const half = MIN_CELL_BOX / 2;
    const around = { left: clientX - half, top: clientY - half, right: clientX + half, bottom: clientY + half };
    if (box === null) return around;
    return {
      left: Math.min(around.left, rect.left + box.x),
      top: Math.min(around.top, rect.top + box.y),
      right: Math.max(around.right, rect.left + box.x + box.w),
      bottom: Math.max(around.bottom, rect.top + box.y + box.h),
    };
  }

  dispose(): void {
    this.resize.disconnect();
  }

  private setView(view: Viewport): void {
    this.view = view;
    const n = this.seqLen;
    if (this.base.width !== view.size) this.base.width = view.size;
    if (this.base.height !== view.size) this.base.height = view.size;
    const zoomed = isZoomed(view, n);
    const image = this.image;
    if (image !== null && !zoomed) {
      context2d(this.base).putImageData(image, 0, 0);
    } else if (image !== null) {
      if (this.fullStale) {
        if (this.full.width !== image.width) this.full.width = image.width;
        if (this.full.height !== image.height) this.full.height = image.height;
        context2d(this.full).putImageData(image, 0, 0);
        this.fullStale = false;
      }
      context2d(this.base).drawImage(this.full, view.x0, view.y0, view.size, view.size, 0, 0, view.size, view.size);
    }
    this.resetButton.disabled = !zoomed;
    this.el.classList.toggle("hs-zoomed", zoomed);
    this.range.textContent =
      `query ${view.y0}–${view.y0 + view.size - 1} × key ${view.x0}–${view.x0 + view.size - 1}` +
      (zoomed ? ` (${Math.round((n / view.size) * 10) / 10}×)` : "");
    this.drawOverlay();
  }

  private zoomBy(factor: number, fx = 0.5, fy = 0.5): void {
    this.setView(zoom(this.view, this.seqLen, factor, fx, fy));
  }

  private drawOverlay(): void {
    const { width, height } = this.size;
    const dpr = fitToBox(this.overlay, width, height);
    const ctx = context2d(this.overlay);
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, width, height);
    this.drawLabels(width);
    if (this.pattern === null) return;
    const { hoverCell, focus, mode } = this.marks;
    ctx.strokeStyle = this.palette.colours.accent;
    if (focus !== null) this.drawFocusBand(ctx, width, height, focus, mode);
    if (hoverCell !== null) this.drawCrosshair(ctx, width, height, hoverCell);
  }

  /** Rebuild the axis labels when the window, the spacing or the tokens changed; mark the hovered ones. */
  private drawLabels(width: number): void {
    const v = this.view;
    const tokens = this.pattern === null ? [] : this.tokens;
    const step = tokens.length === 0 ? Infinity : labelStep(width / v.size, LABEL_PITCH);
    const key = `${this.tokensVersion}:${v.x0},${v.y0},${v.size},${step}`;
    if (key !== this.labelled) {
      this.labelled = key;
      fillAxis(this.queryAxis, tokens, labelPositions(v.y0, v.size, step), v.y0, v.size, "top");
      fillAxis(this.keyAxis, tokens, labelPositions(v.x0, v.size, step), v.x0, v.size, "left");
    }
    const { hoverCell, focus, mode } = this.marks;
    const queryOn = hoverCell?.query ?? (mode === "query" ? focus : null);
    const keyOn = hoverCell?.key ?? (mode === "key" ? focus : null);
    markAxis(this.queryAxis, tokens, queryOn, v.y0, v.size, "top");
    markAxis(this.keyAxis, tokens, keyOn, v.x0, v.size, "left");
  }

  private drawFocusBand(ctx: CanvasRenderingContext2D, w: number, hgt: number, focus: number, mode: Mode): void {
    const cell = mode === "query" ? { query: focus, key: this.view.x0 } : { query: this.view.y0, key: focus };
    const box = cellBox(this.view, w, hgt, cell);
    if (box === null) return;
    ctx.globalAlpha = 0.9;
    ctx.lineWidth = 1;
    if (mode === "query") ctx.strokeRect(0.5, box.y - 0.5, w - 1, box.h + 1);
    else ctx.strokeRect(box.x - 0.5, 0.5, box.w + 1, hgt - 1);
    ctx.globalAlpha = 1;
  }

  private drawCrosshair(ctx: CanvasRenderingContext2D, w: number, hgt: number, cell: Cell): void {
    const box = cellBox(this.view, w, hgt, cell);
    if (box === null) return;
    const cx = box.x + box.w / 2;
    const cy = box.y + box.h / 2;
    ctx.globalAlpha = 0.45;
    ctx.lineWidth = 1;
    ctx.beginPath();
    ctx.moveTo(0, cy);
    ctx.lineTo(w, cy);
    ctx.moveTo(cx, 0);
    ctx.lineTo(cx, hgt);
    ctx.stroke();
    ctx.globalAlpha = 1;
    ctx.lineWidth = 2;
    const pad = 2;
    ctx.strokeRect(box.x - pad, box.y - pad, box.w + 2 * pad, box.h + 2 * pad);
  }

  /** The cell under the pointer; measures the overlay first, before anything is written. */
  private cellFromEvent(e: MouseEvent): Cell | null {
    const rect = this.overlay.getBoundingClientRect();
    this.pointerBox = rect;
    return cellAt(this.view, rect.width, rect.height, e.clientX - rect.left, e.clientY - rect.top);
  }

  private bindPointer(): void {
    const o = this.overlay;
    o.addEventListener("pointermove", (e) => this.onMove(e));
    o.addEventListener("pointerleave", (e) => {
      if (this.drag === null) this.events.point(null, e.clientX, e.clientY);
    });
    o.addEventListener("pointerdown", (e) => {
      this.drag = { x: e.clientX, y: e.clientY, view: this.view, moved: false };
      o.setPointerCapture(e.pointerId);
    });
    o.addEventListener("pointerup", (e) => {
      const drag = this.drag;
      this.drag = null;
      const cell = this.cellFromEvent(e);
      if (drag !== null && !drag.moved && cell !== null) this.events.click(cell);
    });
    o.addEventListener("wheel", (e) => this.onWheel(e), { passive: false });
    o.addEventListener("keydown", (e) => this.onKey(e));
  }

  private onMove(e: PointerEvent): void {
    const drag = this.drag;
    const rect = this.overlay.getBoundingClientRect(); // measured before anything is written
    this.pointerBox = rect;
    if (drag !== null && isZoomed(this.view, this.seqLen)) {
      const perCell = rect.width / this.view.size;
      const dx = Math.round((drag.x - e.clientX) / perCell);
      const dy = Math.round((drag.y - e.clientY) / perCell);
      if (dx !== 0 || dy !== 0) {
        drag.moved = true;
        this.setView(pan(drag.view, this.seqLen, dx, dy));
      }
    }
    const cell = cellAt(this.view, rect.width, rect.height, e.clientX - rect.left, e.clientY - rect.top);
    this.events.point(cell, e.clientX, e.clientY);
  }

  /** Ctrl/⌘ + wheel zooms around the pointer; a plain wheel keeps scrolling the page. */
  private onWheel(e: WheelEvent): void {
    if (!(e.ctrlKey || e.metaKey)) return;
    e.preventDefault();
    const rect = this.overlay.getBoundingClientRect();
    const fx = (e.clientX - rect.left) / rect.width;
    const fy = (e.clientY - rect.top) / rect.height;
    this.zoomBy(e.deltaY < 0 ? 0.8 : 1.25, fx, fy);
  }

  private onKey(e: KeyboardEvent): void {
    const panStep = Math.max(1, Math.round(this.view.size / 8));
    const moves: Record<string, [number, number]> = {
      ArrowLeft: [-panStep, 0],
      ArrowRight: [panStep, 0],
      ArrowUp: [0, -panStep],
      ArrowDown: [0, panStep],
    };
    if (e.key === "+" || e.key === "=") this.zoomBy(ZOOM_STEP);
    else if (e.key === "-") this.zoomBy(1 / ZOOM_STEP);
    else if (e.key === "0") this.setView(fullView(this.seqLen));
    else if (e.key in moves) this.setView(pan(this.view, this.seqLen, ...moves[e.key]));
    else return;
    e.preventDefault();
  }
}

/** Put one label per position on an axis, at the middle of its row (`top`) or column (`left`). */
function fillAxis(
  axis: Axis,
  tokens: readonly string[],
  positions: readonly number[],
  start: number,
  size: number,
  side: "top" | "left",
): void {
  const labels = new Map<number, HTMLElement>();
  for (const i of positions) {
    const token = tokens[i];
    if (token === undefined) continue;
    const label = h("span", "hs-axis-label", displayToken(token));
    label.dataset.index = String(i);
    label.style[side] = `${((i - start + 0.5) / size) * 100}%`;
    labels.set(i, label);
  }
  axis.labels = labels;
  axis.el.replaceChildren(...labels.values(), axis.extra);
}

/** Mark position `on`'s label; give it a label of its own if thinning left it out. */
function markAxis(
  axis: Axis,
  tokens: readonly string[],
  on: number | null,
  start: number,
  size: number,
  side: "top" | "left",
): void {
  for (const [i, el] of axis.labels) el.classList.toggle("hs-axis-on", i === on);
  const token = on === null || axis.labels.has(on) || on < start || on >= start + size ? undefined : tokens[on];
  axis.extra.hidden = token === undefined;
  if (token === undefined || on === null) return;
  axis.extra.textContent = displayToken(token);
  axis.extra.dataset.index = String(on);
  axis.extra.style[side] = `${((on - start + 0.5) / size) * 100}%`;
}

function sameStrings(a: readonly string[], b: readonly string[]): boolean {
  return a === b || (a.length === b.length && a.every((t, i) => t === b[i]));
}
