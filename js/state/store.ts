/** A minimal observable value: `update` merges a patch and notifies subscribers when it changed. */
export class Store<S extends object> {
  private readonly listeners = new Set<(state: S, previous: S) => void>();

  constructor(private state: S) {}

  get(): S {
    return this.state;
  }

  set(next: S): void {
    if (next === this.state) return;
    const previous = this.state;
    this.state = next;
    for (const listener of [...this.listeners]) listener(next, previous);
  }

  subscribe(listener: (state: S, previous: S) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}
