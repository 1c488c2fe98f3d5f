"""Static output: the fallback picture (PNG) and script-free HTML that every widget output carries
(``fallback``), and the offline HTML export of a widget (``html``)."""
