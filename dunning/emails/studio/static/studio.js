// The studio page: state lives in the URL's hash; every saved file brings a `change` event, and the page
// fetches the scenario's emails again. Data from the server only ever reaches the page as text.
"use strict";

const state = { scenario: "", locale: "", width: "600", theme: "light", row: [] };
let index = { locales: [], scenarios: [] };
let fetching = 0;

const $ = (selector) => document.querySelector(selector);

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "text") node.textContent = value;
    else if (key === "class") node.className = value;
    else if (key in node && !key.startsWith("aria") && !key.startsWith("data")) node[key] = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) if (child) node.append(child);
  return node;
}

function readHash() {
  const params = new URLSearchParams(location.hash.slice(1));
  state.scenario = params.get("scenario") || state.scenario;
  state.locale = params.get("locale") || state.locale;
  state.width = params.get("width") || state.width;
  state.theme = params.get("theme") || state.theme;
  if (params.has("row")) state.row = params.get("row").split(",").filter(Boolean);
}

function writeHash() {
  const params = new URLSearchParams({ scenario: state.scenario, locale: state.locale, width: state.width,
    theme: state.theme, row: state.row.join(",") });
  history.replaceState(null, "", "#" + params.toString());
}

async function getJSON(url) {
  const response = await fetch(url, { cache: "no-store" });
  return response.json();
}

async function loadIndex() {
  index = await getJSON("/api/index");
  if (!state.scenario && index.scenarios.length) state.scenario = index.scenarios[0].name;
  if (!index.locales.includes(state.locale)) state.locale = index.locales.includes("en") ? "en" : index.locales[0] || "";
  if (!state.row.length) state.row = [...index.locales];
  state.row = state.row.filter((locale) => index.locales.includes(locale));
  drawSidebar();
  drawControls();
}

function drawSidebar() {
  const nav = $("#scenarios");
  nav.replaceChildren();
  if (index.error) nav.append(errorPanel("Cannot read the catalogs", index.error, null));
  const notices = [...new Set(index.scenarios.map((s) => s.notice))];
  for (const notice of notices) {
    const list = el("ul");
    for (const s of index.scenarios.filter((s) => s.notice === notice)) {
      const link = el("a", { href: "#", text: s.name.split("--").slice(1).join("--") || s.name,
        title: s.error || s.description, class: s.error ? "broken" : "" });
      link.dataset.scenario = s.name;
      link.setAttribute("aria-current", String(s.name === state.scenario));
      link.addEventListener("click", (event) => { event.preventDefault(); select({ scenario: s.name }); });
      list.append(el("li", {}, link));
    }
    nav.append(el("h2", { text: notice }), list);
  }
}

function drawControls() {
  const select = $("#locale");
  select.replaceChildren(...index.locales.map((l) => el("option", { value: l, text: l, selected: l === state.locale })));
  for (const button of document.querySelectorAll("[data-width]"))
    button.setAttribute("aria-pressed", String(button.dataset.width === state.width));
  for (const button of document.querySelectorAll("[data-theme]"))
    button.setAttribute("aria-pressed", String(button.dataset.theme === state.theme));
  document.body.dataset.theme = state.theme;
  $("#row-locales").replaceChildren(...index.locales.map((locale) => {
    const chip = el("button", { type: "button", text: locale });
    chip.setAttribute("aria-pressed", String(state.row.includes(locale)));
    chip.addEventListener("click", () => {
      const row = state.row.includes(locale) ? state.row.filter((l) => l !== locale) : [...state.row, locale];
      select({ row: index.locales.filter((l) => row.includes(l)) });
    });
    return chip;
  }));
}

function select(change) {
  Object.assign(state, change);
  writeHash();
  drawSidebar();
  drawControls();
  refresh();
}

function errorPanel(title, message, source) {
  return el("div", { class: "error-panel", role: "alert" }, el("strong", { text: title }),
    el("pre", { text: message }), source ? el("a", { href: source, target: "_blank", text: "open the file" }) : null);
}

// The dark view applies the email's own `prefers-color-scheme: dark` styles, as a mail app in dark mode does
// (never an inverted picture of the light one): their media queries are made to match, the light ones not to.
function inTheme(html) {
  if (state.theme !== "dark") return html;
  return html.replace(/\(\s*prefers-color-scheme\s*:\s*dark\s*\)/gi, "(min-width: 0px)")
    .replace(/\(\s*prefers-color-scheme\s*:\s*light\s*\)/gi, "(max-width: 0px)");
}

function frame(email, width) {
  const iframe = el("iframe", { title: `${email.locale}: ${email.subject}`, width: String(width) });
  iframe.setAttribute("sandbox", "allow-popups allow-popups-to-escape-sandbox");
  iframe.srcdoc = inTheme(email.html);
  return iframe;
}

function meta(label, value, email) {
  return el("p", { class: `meta ${label.toLowerCase()}` }, el("b", { text: label + ": " }),
    el("span", { text: value, lang: email.lang, dir: email.dir }));
}

function drawFocus(view) {
  const focus = $("#focus");
  $("#title").textContent = view.notice ? `${view.notice} · ${view.scenario}` : view.scenario || "";
  if (view.error) return focus.replaceChildren(errorPanel("This scenario cannot be shown", view.error, view.source));
  const email = view.emails.find((e) => e.locale === state.locale) || view.emails[0];
  if (!email) return focus.replaceChildren();
  if (email.error) return focus.replaceChildren(errorPanel(`Cannot render ${email.locale}`, email.error, email.source));
  focus.replaceChildren(el("div", { class: "email-head" }, meta("Subject", email.subject, email),
      meta("Preheader", email.preheader, email)),
    el("div", { class: "email" }, frame(email, state.width),
      el("pre", { class: "text", text: email.text, lang: email.lang, dir: email.dir })));
}

function drawRow(view) {
  const cards = (view.emails || []).filter((email) => state.row.includes(email.locale)).map((email) => {
    const card = el("article", { class: "card" }, el("h4", { text: email.locale }));
    card.dataset.locale = email.locale;
    if (email.error) card.append(errorPanel(`Cannot render ${email.locale}`, email.error, email.source));
    else card.append(meta("Subject", email.subject, email), frame(email, state.width));
    return card;
  });
  $("#row").replaceChildren(...cards);
}

function drawLint(problems) {
  const list = $("#lint ul");
  if (!problems.length) return list.replaceChildren(el("li", { class: "clean", text: "No findings." }));
  list.replaceChildren(...problems.map((p) => el("li", { class: p.severity },
    p.source ? el("a", { href: p.source, target: "_blank", text: p.text }) : el("span", { text: p.text }))));
}

function drawTranslations(rows) {
  $("#translations tbody").replaceChildren(...rows.map((row) => {
    const tr = el("tr", {}, el("td", { text: row.locale }), el("td", { text: String(row.translated) }),
      el("td", { text: String(row.fuzzy), class: row.fuzzy ? "bad" : "" }),
      el("td", { text: row.error ? "unreadable" : String(row.missing), class: row.missing || row.error ? "bad" : "" }));
    tr.dataset.locale = row.locale;
    return tr;
  }));
  $("#untranslated").replaceChildren(...rows.filter((row) => row.untranslated.length || row.error).map((row) => {
    const items = row.untranslated.map((u) => el("li", {}, el("a", { href: u.source || "#", target: "_blank",
      text: (u.fuzzy ? "fuzzy: " : "") + u.msgid })));
    return el("details", { class: "missing" }, el("summary", { text: `${row.locale}: ${row.error || "untranslated"}` }),
      el("ul", {}, ...items));
  }));
}

async function refresh() {
  const ticket = ++fetching;
  const scenario = encodeURIComponent(state.scenario);
  const translations = getJSON("/api/translations");   // it reads every template: the email need not wait
  const view = await getJSON(`/api/view?scenario=${scenario}`);
  if (ticket !== fetching) return;   // a newer refresh has started: its answer wins
  drawFocus(view);
  drawRow(view);
  lint(ticket, scenario);   // slower (it renders every email): the email is on screen before it is done
  const table = await translations;
  if (ticket === fetching) drawTranslations(table);
}

async function lint(ticket, scenario) {
  const problems = await getJSON(`/api/lint?scenario=${scenario}`);
  if (ticket === fetching) drawLint(problems);
}

async function sendTest(event) {
  event.preventDefault();
  const result = $("#send-result");
  result.className = "";
  result.textContent = "sending…";
  const response = await fetch("/api/send", { method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ scenario: state.scenario, locale: state.locale, to: $("#send-to").value }) });
  const answer = await response.json();
  result.className = answer.ok ? "ok" : "refused";
  result.textContent = answer.message;
}

function listen() {
  const source = new EventSource("/events");
  source.addEventListener("hello", async (event) => {
    const status = JSON.parse(event.data);
    await loadIndex();
    await refresh();   // whatever changed while the page was not listening
    document.body.dataset.live = status.watching ? "on" : "off";
    $("#live").textContent = status.watching ? "live: saved files show here at once" : `not live: ${status.message}`;
  });
  source.addEventListener("change", async () => { await loadIndex(); await refresh(); });
  // The server says when it stops watching (a folder is gone) and when it watches again (a new one is in place).
  source.addEventListener("watching", async (event) => {
    const status = JSON.parse(event.data);
    document.body.dataset.live = status.watching ? "on" : "off";
    $("#live").textContent = status.watching ? "live: saved files show here at once" : `not live: ${status.message}`;
    if (status.watching) { await loadIndex(); await refresh(); }
  });
  source.addEventListener("error", () => {
    document.body.dataset.live = "off";
    $("#live").textContent = "reconnecting…";
  });
}

document.addEventListener("DOMContentLoaded", () => {
  readHash();
  for (const button of document.querySelectorAll("[data-width]"))
    button.addEventListener("click", () => select({ width: button.dataset.width }));
  for (const button of document.querySelectorAll("[data-theme]"))
    button.addEventListener("click", () => select({ theme: button.dataset.theme }));
  $("#locale").addEventListener("change", (event) => select({ locale: event.target.value }));
  $("#send-form").addEventListener("submit", sendTest);
  listen();
});
