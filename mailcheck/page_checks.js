// Runs in the rendered email (hasInvoices: whether its notice lists invoices; units: its dates and amounts as written;
// dark: whether the page is shown in dark mode). Returns what a reader at this width would see wrong: words of the invoice
// table (the one with header cells) broken across lines, a date or amount broken across lines, a page wider than the screen,
// text below WCAG AA contrast, no heading, an invoice table without caption, a light page behind a dark email.
({ hasInvoices, units, dark }) => {
  const problems = [];
  if (!document.querySelector("h1, h2")) problems.push("no heading element (h1)");
  for (const table of document.querySelectorAll("table")) {
    const headed = [...table.rows].some(r => r.querySelector(":scope > th"));
    if (headed && !table.querySelector(":scope > caption")) problems.push("a table with header cells has no caption");
  }
  if (dark) {
    const [r, g, b] = getComputedStyle(document.body).backgroundColor.match(/\d+/g).map(Number);
    if (r + g + b > 3 * 96) problems.push(`the page behind the email stays light in dark mode (${getComputedStyle(document.body).backgroundColor})`);
  }
  // No date or amount may break across lines, wherever it stands.
  const texts = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = texts.nextNode(); node; node = texts.nextNode()) {
    for (const unit of units) {
      for (let at = node.data.indexOf(unit); at >= 0; at = node.data.indexOf(unit, at + 1)) {
        const range = document.createRange();
        range.setStart(node, at);
        range.setEnd(node, at + unit.length);
        const tops = new Set([...range.getClientRects()].filter(r => r.width > 0).map(r => Math.round(r.top)));
        if (tops.size > 1) problems.push(`"${unit}" breaks across ${tops.size} lines`);
      }
    }
  }
  const width = window.innerWidth;
  if (document.documentElement.scrollWidth > width + 1) {
    problems.push(`page is ${document.documentElement.scrollWidth}px wide on a ${width}px screen`);
  }
  // Every word (run of non-spaces) of each invoice-table cell must sit on one line.
  const tables = [...document.querySelectorAll("table")].filter(t => [...t.rows].some(r => r.querySelector(":scope > th")));
  if (hasInvoices && !tables.length) problems.push("no invoice table (a table with header cells) found");
  if (!hasInvoices && tables.length) problems.push("an invoice table in a notice that lists no invoices");
  for (const cell of tables.flatMap(t => [...t.querySelectorAll("th, td")])) {
    const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      for (const match of node.data.matchAll(/\S+/g)) {
        const range = document.createRange();
        range.setStart(node, match.index);
        range.setEnd(node, match.index + match[0].length);
        const tops = new Set([...range.getClientRects()].filter(r => r.width > 0).map(r => Math.round(r.top)));
        if (tops.size > 1) problems.push(`"${match[0]}" breaks across ${tops.size} lines in "${cell.textContent.trim()}"`);
      }
    }
  }
  // Contrast of every visible piece of text against the background it is painted on.
  const parse = (c) => { const m = c.match(/rgba?\(([^)]+)\)/); if (!m) return null;
    const p = m[1].split(/[ ,/]+/).filter(Boolean).map(Number); return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1]; };
  const lum = ([r, g, b]) => { const f = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b); };
  const background = (el) => { for (let e = el; e; e = e.parentElement) {
      const c = parse(getComputedStyle(e).backgroundColor); if (c && c[3] > 0) return c; }
    return [255, 255, 255, 1]; };
  const seen = new Set();
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    if (!node.data.trim()) continue;
    const el = node.parentElement;
    const rect = el.getBoundingClientRect();
    const style = getComputedStyle(el);
    if (rect.width < 2 || rect.height < 2 || style.visibility === "hidden" || el.closest("[aria-hidden=true]")) continue;
    const fg = parse(style.color), bg = background(el);
    const [a, b] = [lum(fg) + 0.05, lum(bg) + 0.05];
    const ratio = Math.max(a, b) / Math.min(a, b);
    const size = parseFloat(style.fontSize), bold = parseInt(style.fontWeight, 10) >= 700;
    const needed = size >= 24 || (bold && size >= 18.66) ? 3 : 4.5;
    const key = `${style.color} on ${bg} at ${size}px`;
    if (ratio < needed && !seen.has(key)) {
      seen.add(key);
      problems.push(`contrast ${ratio.toFixed(2)}:1 < ${needed}:1 for "${node.data.trim().slice(0, 40)}" (${style.color} on rgb(${bg.slice(0, 3)}), ${size}px)`);
    }
  }
  return problems;
}
