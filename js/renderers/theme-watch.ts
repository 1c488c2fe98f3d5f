/** Watching the page for a light/dark switch, and the view for the moment it can be styled. */

export interface ThemeWatch {
  stop(): void;
}

/**
 * Calls `changed` when the page may have switched between light and dark: JupyterLab flips
 * `data-jp-theme-light` on <body>, VS Code swaps body classes, other hosts follow the OS. Also
 * when `root` gets a box: it is attached (first render, a reload, a notebook that windows its
 * cells out and back) or shown again, and only then can its computed style be read.
 */
export function watchTheme(root: HTMLElement, changed: () => void): ThemeWatch {
  const resize = new ResizeObserver(changed);
  resize.observe(root);
  const observer = new MutationObserver(changed);
  observer.observe(document.body, { attributes: true, attributeFilter: ["class", "data-jp-theme-light", "data-jp-theme-name"] });
  const media = window.matchMedia("(prefers-color-scheme: dark)");
  media.addEventListener("change", changed);
  return {
    stop: () => {
      resize.disconnect();
      observer.disconnect();
      media.removeEventListener("change", changed);
    },
  };
}
