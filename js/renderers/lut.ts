/**
 * Colour lookup: a 256-entry RGBA table indexed by `round(255 * weight)`, built by linear
 * interpolation between a few colour stops. One table per theme.
 */

export type Stop = readonly [position: number, hex: string];

export type Theme = "light" | "dark";

export const STOPS: Record<Theme, readonly Stop[]> = {
  light: [
    [0, "#f8fafc"],
    [0.2, "#c7d7fe"],
    [0.45, "#7c8cf6"],
    [0.7, "#4338ca"],
    [1, "#1e1457"],
  ],
  dark: [
    [0, "#161b26"],
    [0.25, "#33337a"],
    [0.5, "#7c3aed"],
    [0.75, "#e879f9"],
    [1, "#fdf2ff"],
  ],
};

/** Diverging scale (loss change, patching effect): negative blue, zero neutral, positive red. */
export const DIVERGING: Record<Theme, readonly Stop[]> = {
  light: [
    [0, "#1d4ed8"],
    [0.25, "#93b4f5"],
    [0.5, "#f8fafc"],
    [0.75, "#f4a3a3"],
    [1, "#b91c1c"],
  ],
  dark: [
    [0, "#60a5fa"],
    [0.25, "#2b4a80"],
    [0.5, "#161b26"],
    [0.75, "#8a3340"],
    [1, "#fca5a5"],
  ],
};

export type Rgb = readonly [number, number, number];

export function parseHex(hex: string): Rgb {
  const m = /^#([0-9a-f]{6})$/i.exec(hex);
  if (m === null) throw new Error(`not a #rrggbb colour: ${hex}`);
  const n = parseInt(m[1], 16);
  return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
}

/** 256 × RGBA bytes; entry `i` is the colour of weight `i / 255`. */
export function buildLut(stops: readonly Stop[]): Uint8ClampedArray {
  if (stops.length < 2 || stops[0][0] !== 0 || stops[stops.length - 1][0] !== 1) {
    throw new Error("colour stops must start at 0 and end at 1");
  }
  const rgb = stops.map(([, hex]) => parseHex(hex));
  const lut = new Uint8ClampedArray(256 * 4);
  let seg = 0;
  for (let i = 0; i < 256; i++) {
    const t = i / 255;
    while (seg < stops.length - 2 && t > stops[seg + 1][0]) seg++;
    const [t0, t1] = [stops[seg][0], stops[seg + 1][0]];
    const f = (t - t0) / (t1 - t0);
    for (let c = 0; c < 3; c++) lut[i * 4 + c] = Math.round(rgb[seg][c] + (rgb[seg + 1][c] - rgb[seg][c]) * f);
    lut[i * 4 + 3] = 255;
  }
  return lut;
}

/** LUT index of a weight in [0, 1] (clamped). */
export function levelOf(weight: number): number {
  if (!(weight > 0)) return 0;
  return weight >= 1 ? 255 : Math.round(weight * 255);
}

export function lutColor(lut: Uint8ClampedArray, index: number): Rgb {
  return [lut[index * 4], lut[index * 4 + 1], lut[index * 4 + 2]];
}

export function cssColor(lut: Uint8ClampedArray, index: number): string {
  const [r, g, b] = lutColor(lut, index);
  return `rgb(${r}, ${g}, ${b})`;
}

/** Relative luminance (WCAG 2) of an sRGB colour. */
export function luminance([r, g, b]: Rgb): number {
  const lin = (c: number): number => {
    const s = c / 255;
    return s <= 0.04045 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
  };
  return 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b);
}

/**
 * Whether black text reads better than white on this colour. At luminance 0.179 both have the
 * same contrast (4.58:1), so the better of the two is always at least 4.5:1.
 */
export function prefersDarkText(rgb: Rgb): boolean {
  return luminance(rgb) > 0.179;
}

const luts = new Map<Theme, Uint8ClampedArray>();

/** The (immutable, memoised) table of a theme. */
export function lutFor(theme: Theme): Uint8ClampedArray {
  let lut = luts.get(theme);
  if (lut === undefined) {
    lut = buildLut(STOPS[theme]);
    luts.set(theme, lut);
  }
  return lut;
}

/**
 * The theme of the host around `el`, decided by the stylesheet's `--hs-scheme` variable, or by
 * the host's own markers while the stylesheet does not apply yet. Null while `el` is not in the
 * document: a detached element has no computed style, so there is nothing to read yet.
 */
export function themeOf(el: Element): Theme | null {
  if (!el.isConnected) return null;
  const scheme = getComputedStyle(el).getPropertyValue("--hs-scheme").trim();
  if (scheme === "dark" || scheme === "light") return scheme;
  return hostTheme(el.ownerDocument);
}

/** The host page's theme from its markers: JupyterLab, VS Code, then the OS preference. */
export function hostTheme(doc: Document): Theme {
  const body = doc.body;
  const jupyter = body?.getAttribute("data-jp-theme-light");
  if (jupyter === "false") return "dark";
  if (jupyter === "true") return "light";
  const classes = body?.classList;
  if (classes?.contains("vscode-dark")) return "dark";
  if (classes?.contains("vscode-high-contrast") && !classes.contains("vscode-high-contrast-light")) return "dark";
  if (classes?.contains("vscode-light") || classes?.contains("vscode-high-contrast-light")) return "light";
  const view = doc.defaultView;
  return view !== null && view.matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light";
}

const divergingLuts = new Map<Theme, Uint8ClampedArray>();

/** The diverging table of a theme: index 128 is zero, 0 the negative end, 255 the positive. */
export function divergingLutFor(theme: Theme): Uint8ClampedArray {
  let lut = divergingLuts.get(theme);
  if (lut === undefined) {
    lut = buildLut(DIVERGING[theme]);
    divergingLuts.set(theme, lut);
  }
  return lut;
}
