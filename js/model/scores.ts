/** Head scores as the kernel sends them (docs/wire.md): float32 `[score, layer, head]`. */

export interface ScoreTable {
  readonly names: readonly string[];
  readonly nLayers: number;
  readonly nHeads: number;
  readonly values: Float32Array;
}

export interface RankedHead {
  readonly layer: number;
  readonly head: number;
  readonly value: number;
}

/** A table, or null when the values do not have the size the names and geometry promise. */
export function scoreTable(
  names: readonly string[],
  nLayers: number,
  nHeads: number,
  values: Float32Array,
): ScoreTable | null {
  if (names.length === 0 || values.length !== names.length * nLayers * nHeads) return null;
  return { names, nLayers, nHeads, values };
}

/** One score of every head, `[layer * nHeads + head]`, or null for an unknown score name. */
export function scoreOf(table: ScoreTable, name: string): Float32Array | null {
  const i = table.names.indexOf(name);
  if (i < 0) return null;
  const size = table.nLayers * table.nHeads;
  return table.values.subarray(i * size, (i + 1) * size);
}

/** The `k` best heads by `name`, best first; heads without a value (NaN) are left out. */
export function topHeads(table: ScoreTable, name: string, k: number): RankedHead[] {
  const values = scoreOf(table, name);
  if (values === null) return [];
  const ranked: RankedHead[] = [];
  values.forEach((value, i) => {
    if (!Number.isNaN(value)) ranked.push({ layer: Math.floor(i / table.nHeads), head: i % table.nHeads, value });
  });
  ranked.sort((a, b) => b.value - a.value || a.layer - b.layer || a.head - b.head);
  return ranked.slice(0, k);
}

/** "induction 0.83" lines for one head's tooltip ("–" where a score has no value). */
export function scoreLines(table: ScoreTable, layer: number, head: number): string[] {
  const i = layer * table.nHeads + head;
  return table.names.map((name) => {
    const v = scoreOf(table, name)?.[i];
    return `${scoreLabel(name)} ${v === undefined || Number.isNaN(v) ? "–" : v.toFixed(2)}`;
  });
}

export function scoreLabel(name: string): string {
  return name.replace(/_/g, " ");
}
