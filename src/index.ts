/**
 * The headscope JupyterLab extension: a thin shell. It owns a panel in the right side bar, the
 * commands and the tracking of the active notebook; the side panel's UI comes from the widget's
 * own bundle through the page-level registry (js/registry.ts), so there is one copy of it and
 * it always matches the widget's version. A view belongs to a notebook when the notebook's node
 * contains the view's element.
 */
import type { JupyterFrontEnd, JupyterFrontEndPlugin } from "@jupyterlab/application";
import { ICommandPalette } from "@jupyterlab/apputils";
import { INotebookTracker } from "@jupyterlab/notebook";
import { LabIcon } from "@jupyterlab/ui-components";
import { Widget } from "@lumino/widgets";
import { ACTION_KEYS, mostRecent, notify, registry, subscribe, type Registry, type ViewAction, type ViewEntry, type ViewSummary } from "../js/registry";

const PANEL_ID = "headscope-panel";
/** Lumino shortcuts work while the panel has focus; inside a widget's output the widget's own
 * key handler answers the same keys (its root suppresses Lumino's shortcuts). */
const SCOPE = ".jp-headscope-panel";

const ICON_SVG = `<svg xmlns="http://www.w3.org/2000/svg" width="16" viewBox="0 0 24 24"><g class="jp-icon3" fill="#616161"><rect x="3" y="3" width="5" height="5" rx="1"/><rect x="10" y="3" width="5" height="5" rx="1" opacity=".55"/><rect x="17" y="3" width="4" height="5" rx="1" opacity=".3"/><rect x="3" y="10" width="5" height="5" rx="1" opacity=".3"/><rect x="10" y="10" width="5" height="5" rx="1"/><rect x="17" y="10" width="4" height="5" rx="1" opacity=".55"/><rect x="3" y="17" width="5" height="4" rx="1" opacity=".55"/><rect x="10" y="17" width="5" height="4" rx="1" opacity=".3"/><rect x="17" y="17" width="4" height="4" rx="1"/></g></svg>`;

const EXAMPLE = 'headscope.show(None, "The cat sat on the mat. The cat sat on the mat.")';

function el<K extends keyof HTMLElementTagNameMap>(tag: K, cls: string, text?: string): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

function firstWords(text: string, n = 6): string {
  const words = text.trim().split(/\s+/).filter((w) => w !== "");
  return words.slice(0, n).join(" ") + (words.length > n ? " …" : "");
}

/** A view's summary, or null when its bundle cannot give one. */
function summaryOf(entry: ViewEntry): ViewSummary | null {
  try {
    return entry.summary();
  } catch {
    return null;
  }
}

/** The side-bar panel: the active notebook's widgets, and the current one's side panel. */
class HeadscopePanel extends Widget {
  private readonly list = el("ul", "jp-headscope-list");
  private readonly empty = el("div", "jp-headscope-empty");
  private readonly note = el("div", "jp-headscope-note");
  private readonly mount = el("div", "jp-headscope-mount");
  private mounted: { entry: ViewEntry; unmount: () => void } | null = null;
  private notebook: HTMLElement | null = null;
  private recheck = 0;
  private rechecks = 0;
  private listKey = "";
  private readonly unsubscribe: () => void;

  constructor(
    private readonly reg: Registry,
    /** Called once, the first time the followed notebook shows a headscope widget. */
    private firstWidget: (() => void) | null = null,
  ) {
    super();
    this.id = PANEL_ID;
    this.addClass("jp-headscope-panel");
    this.list.setAttribute("aria-label", "headscope widgets in this notebook");
    const intro = el("p", "jp-headscope-empty-text", "No headscope widget in this notebook. Make one with one line of code:");
    const code = el("pre", "jp-headscope-code");
    code.append(el("code", "", `import headscope; ${EXAMPLE}`));
    this.empty.append(intro, code);
    this.node.append(this.empty, this.list, this.note, this.mount);
    this.unsubscribe = subscribe(reg, () => this.changed());
    this.refresh();
  }

  /** The notebook whose widgets are listed (null: none). */
  follow(node: HTMLElement | null): void {
    if (node === this.notebook) return;
    this.notebook = node;
    this.refresh();
  }

  /** The widgets of the followed notebook, in the order they appear. */
  entries(): ViewEntry[] {
    const nb = this.notebook;
    if (nb === null) return [];
    const found = [...this.reg.views.values()].filter((e) => nb.contains(e.element));
    return found.sort((a, b) => (a.element.compareDocumentPosition(b.element) & Node.DOCUMENT_POSITION_FOLLOWING ? -1 : 1));
  }

  current(): ViewEntry | null {
    return mostRecent(this.entries());
  }

  /** A registry change: look for detached views again for a while (see {@link refresh}). */
  private changed(): void {
    this.rechecks = 0;
    this.refresh();
  }

  refresh(): void {
    const entries = this.entries();
    const current = mostRecent(entries);
    if (entries.length > 0 && this.firstWidget !== null) {
      const first = this.firstWidget;
      this.firstWidget = null;
      first(); // may show this panel (which refreshes it, nested: the rest is idempotent)
    }
    this.empty.hidden = entries.length > 0;
    this.list.hidden = entries.length === 0;
    const summaries = entries.map((entry) => summaryOf(entry));
    // rebuilt only when what it shows changes, so that focus stays on a button of the list
    const key = JSON.stringify([entries.map((e) => e.id), summaries, current?.id ?? null]);
    if (key !== this.listKey) {
      this.listKey = key;
      this.renderList(entries, summaries, current);
    }
    // docked only while the side bar shows this panel: otherwise the panel stays in the output
    const show = this.isVisible && current !== null && current.docked ? current : null;
    this.note.hidden = current === null || show !== null;
    this.note.textContent = current === null ? "" : "This widget's panel is in its cell output. Press its Dock button, or pick it above, to show it here.";
    if (this.mounted !== null && this.mounted.entry !== show) {
      const { unmount } = this.mounted;
      this.mounted = null;
      unmount();
    }
    if (show !== null && this.mounted === null) {
      try {
        this.mounted = { entry: show, unmount: show.mountSidePanel(this.mount) };
      } catch (error) {
        console.warn("headscope: the widget's side panel could not be shown here", error);
      }
    }
    // views published before their output is in the page: look again a few times (a view that
    // stays detached, such as one in a notebook's virtualized cell, is simply not listed)
    const detached = [...this.reg.views.values()].some((e) => !e.element.isConnected);
    if (detached && this.recheck === 0 && this.rechecks < 50) {
      this.rechecks++;
      this.recheck = window.setTimeout(() => {
        this.recheck = 0;
        this.refresh();
      }, 200);
    }
  }

  private renderList(entries: ViewEntry[], summaries: (ViewSummary | null)[], current: ViewEntry | null): void {
    this.list.replaceChildren(
      ...entries.map((entry, i) => {
        const s = summaries[i] ?? { modelName: "headscope", prompt: "", tokens: 0, layer: 0, head: 0 };
        const item = el("li", "jp-headscope-item");
        const pick = el("button", "jp-headscope-pick");
        pick.type = "button";
        pick.setAttribute("aria-current", String(entry === current));
        pick.append(
          el("span", "jp-headscope-model", `${i + 1}. ${s.modelName}`),
          el("span", "jp-headscope-prompt", firstWords(s.prompt) || "(no prompt)"),
          el("span", "jp-headscope-tokens", `${s.tokens} tokens · L${s.layer} H${s.head}`),
        );
        pick.title = s.prompt;
        pick.addEventListener("click", () => {
          entry.docked = true;
          entry.usedAt = ++this.reg.clock;
          notify(this.reg);
        });
        item.append(pick);
        return item;
      }),
    );
  }

  protected onAfterShow(): void {
    this.refresh();
  }

  protected onAfterHide(): void {
    this.refresh();
  }

  dispose(): void {
    if (this.isDisposed) return;
    this.unsubscribe();
    window.clearTimeout(this.recheck);
    this.mounted?.unmount();
    this.mounted = null;
    super.dispose();
  }
}

const COMMANDS: { id: string; action: ViewAction; label: string }[] = [
  { id: "headscope:next-head", action: "next-head", label: "headscope: Next Head" },
  { id: "headscope:previous-head", action: "previous-head", label: "headscope: Previous Head" },
  { id: "headscope:next-layer", action: "next-layer", label: "headscope: Next Layer" },
  { id: "headscope:previous-layer", action: "previous-layer", label: "headscope: Previous Layer" },
  { id: "headscope:toggle-mode", action: "toggle-mode", label: "headscope: Toggle Query/Key Colouring" },
  { id: "headscope:focus-prompt", action: "focus-prompt", label: "headscope: Focus the Prompt" },
];

const plugin: JupyterFrontEndPlugin<void> = {
  id: "headscope:sidebar",
  description: "Docks the headscope widget's side panel in JupyterLab's right side bar.",
  autoStart: true,
  optional: [INotebookTracker, ICommandPalette],
  activate: (app: JupyterFrontEnd, tracker: INotebookTracker | null, palette: ICommandPalette | null) => {
    const reg = registry();
    // docked is the default in JupyterLab: the first widget of the page opens the side bar on
    // this panel, once (a panel the user closes stays closed); other hosts (Notebook 7) keep
    // the panel in the output until the user docks it
    const reveal = app.name === "JupyterLab" ? () => app.shell.activateById(PANEL_ID) : null;
    const panel = new HeadscopePanel(reg, reveal);
    panel.title.icon = new LabIcon({ name: "headscope:icon", svgstr: ICON_SVG });
    panel.title.caption = "headscope";
    app.shell.add(panel, "right", { rank: 650 });
    reg.docks += 1;
    reg.reveal = () => app.shell.activateById(PANEL_ID);
    notify(reg);

    const follow = (): void => panel.follow(tracker?.currentWidget?.node ?? null);
    tracker?.currentChanged.connect(follow);
    follow();

    const open = "headscope:open-panel";
    app.commands.addCommand(open, {
      label: "headscope: Open the Panel",
      execute: () => app.shell.activateById(PANEL_ID),
    });
    app.commands.addKeyBinding({ command: open, keys: ["Alt Shift H"], selector: "body" });
    palette?.addItem({ command: open, category: "headscope" });
    for (const c of COMMANDS) {
      app.commands.addCommand(c.id, {
        label: c.label,
        isEnabled: () => panel.current() !== null,
        execute: () => {
          const entry = panel.current();
          if (entry === null) return false;
          if (c.action === "focus-prompt" && entry.docked) app.shell.activateById(PANEL_ID);
          try {
            return entry.act(c.action);
          } catch (error) {
            console.warn(`headscope: ${c.id} failed`, error);
            return false;
          }
        },
      });
      const key = ACTION_KEYS[c.action].replace(/^Key/, "");
      app.commands.addKeyBinding({ command: c.id, keys: [`Alt ${key}`], selector: SCOPE });
      palette?.addItem({ command: c.id, category: "headscope" });
    }
  },
};

export default plugin;
