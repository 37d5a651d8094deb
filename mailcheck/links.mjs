// Links in every part of each .eml given, found as mail clients find them: mailparser parses the MIME,
// <a href> in the HTML part, linkify-it in the text part (the detector mailparser itself uses for textAsHtml).
// Usage: node links.mjs FILE.eml...  →  JSON {file: {html: [{href, text}], text: [{url, raw}], textAsHtml: [href]}}
import { readFile } from "node:fs/promises";
import { simpleParser } from "mailparser";
import LinkifyIt from "linkify-it";

const linkify = new LinkifyIt();
const entities = { amp: "&", lt: "<", gt: ">", quot: '"', "#39": "'" };
const decode = (s) => s.replace(/&(amp|lt|gt|quot|#39);/g, (_, e) => entities[e]);
const strip = (s) => decode(s.replace(/<[^>]*>/g, "")).replace(/\s+/g, " ").trim();

const found = {};
for (const file of process.argv.slice(2)) {
  const mail = await simpleParser(await readFile(file));
  const html = [...(mail.html || "").matchAll(/<a\b[^>]*?\bhref\s*=\s*"([^"]*)"[^>]*>([\s\S]*?)<\/a>/gi)]
    .map((m) => ({ href: decode(m[1]), text: strip(m[2]) }));
  const text = (linkify.match(mail.text || "") || []).map((m) => ({ url: m.url, raw: m.raw }));
  const textAsHtml = [...(mail.textAsHtml || "").matchAll(/<a\b[^>]*?\bhref\s*=\s*"([^"]*)"/gi)].map((m) => decode(m[1]));
  found[file] = { html, text, textAsHtml };
}
process.stdout.write(JSON.stringify(found));
