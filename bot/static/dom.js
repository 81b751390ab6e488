// Element helpers shared by the CrowdDesk consoles. Text from customers, agents and the
// knowledge base is always set with textContent, never innerHTML, so it can't inject markup.
"use strict";

const $ = (id) => document.getElementById(id);

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

function safeLink(url) {
  // Only web links: a javascript: URL in a KB source must never become clickable.
  try {
    const parsed = new URL(url);
    return ["http:", "https:"].includes(parsed.protocol) ? parsed.href : null;
  } catch {
    return null;
  }
}
