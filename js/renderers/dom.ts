/** Small DOM helpers (no innerHTML anywhere in headscope). */

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  className: string,
  text?: string,
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  el.className = className;
  if (text !== undefined) el.textContent = text;
  return el;
}

export function button(className: string, label: string, onClick: () => void, ariaLabel?: string): HTMLButtonElement {
  const b = h("button", `hs-btn ${className}`, label);
  b.type = "button";
  if (ariaLabel !== undefined) {
    b.setAttribute("aria-label", ariaLabel);
    b.title = ariaLabel;
  }
  b.addEventListener("click", onClick);
  return b;
}

/** A 2D context or an error that says why (a canvas without 2D support cannot show anything). */
export function context2d(canvas: HTMLCanvasElement): CanvasRenderingContext2D {
  const ctx = canvas.getContext("2d");
  if (ctx === null) throw new Error("headscope needs Canvas 2D, which this browser refused");
  return ctx;
}

/** Size a canvas's backing store to its CSS box times the device pixel ratio; returns the ratio. */
export function fitToBox(canvas: HTMLCanvasElement, cssWidth: number, cssHeight: number): number {
  const dpr = window.devicePixelRatio || 1;
  const w = Math.max(1, Math.round(cssWidth * dpr));
  const hgt = Math.max(1, Math.round(cssHeight * dpr));
  if (canvas.width !== w) canvas.width = w;
  if (canvas.height !== hgt) canvas.height = hgt;
  return dpr;
}

/** Give a canvas a CSS size, fit its backing store, and return its context cleared, in CSS pixels. */
export function beginCanvas(
  canvas: HTMLCanvasElement,
  cssWidth: number,
  cssHeight: number,
): CanvasRenderingContext2D {
  canvas.style.width = `${cssWidth}px`;
  canvas.style.height = `${cssHeight}px`;
  const dpr = fitToBox(canvas, cssWidth, cssHeight);
  const ctx = context2d(canvas);
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, cssWidth, cssHeight);
  return ctx;
}

/**
 * A collapsible side-panel section: `<details>` with its title as the `<summary>` (focusable,
 * and Enter or Space opens and closes it).
 */
export function fold(className: string, title: string, open: boolean): HTMLDetailsElement {
  const el = h("details", `${className} hs-fold`);
  el.open = open;
  el.append(h("summary", "hs-section-title hs-fold-title", title));
  return el;
}
