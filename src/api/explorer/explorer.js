// The kafkachain explorer: reads this node's JSON API and renders it. Every text from the API
// goes into the page as a text node (append/textContent), never as HTML. Pages are routed by
// the URL fragment (#/block/<hash>, #/tx/<id>, #/account/<address>, #/blocks?from=N,
// #/mempool, #/search/<text>) so each can be linked. The page follows the node through its
// Server-Sent Events (/events) and reads /status when an event says the chain changed; while the
// stream is down it polls /status instead.
"use strict";

/** How often the node's status is read while the event stream is down, in milliseconds. */
const POLL_MS = 2500;
/** How long after the node refused the event stream it is asked again, in milliseconds. */
const STREAM_RETRY_MS = 30000;
/** How often the figures no event carries (hash rates, mempool) are read while the stream is up. */
const REFRESH_MS = 30000;
/** Blocks per page of the blocks list. */
const PAGE = 20;
/** A block hash, a transaction id and an address all look like this. */
const HEX64 = /^[0-9a-fA-F]{64}$/;

const view = document.getElementById("view");
let tip = null;
let mempoolSize = null;
let polling = false;
let pollAgain = false;
let pollTimer = null;
let following = "polling";
let stream = null;
let renderSeq = 0;
let notice = "";

/** Keeps the digits of integers past 2^53 (as strings) where the browser shows the source. */
function exact(key, value, context) {
  return Number.isInteger(value) && !Number.isSafeInteger(value) && context ? context.source : value;
}

/** GET `path` from the node: `{ok, status, body}` with the body parsed as JSON. */
async function api(path) {
  const response = await fetch(path, { headers: { Accept: "application/json" } });
  const text = await response.text();
  let body;
  try {
    body = JSON.parse(text, exact);
  } catch (e) {
    body = { error: `${path} answered ${response.status}` };
  }
  return { ok: response.ok, status: response.status, body };
}

/** GET `path`, throwing the node's error message unless it answered 2xx. */
async function get(path) {
  const answer = await api(path);
  if (!answer.ok) throw new Error(answer.body.error || `${path} answered ${answer.status}`);
  return answer.body;
}

/** An element with attributes and children; strings become text nodes. */
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, String(value));
  for (const child of children) {
    if (child !== null && child !== undefined) node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

const link = (route, text) => el("a", { href: `#/${route}` }, text);
const blockLink = (hash, text) => link(`block/${encodeURIComponent(hash)}`, text ?? hash);
const txLink = (id) => link(`tx/${encodeURIComponent(id)}`, id);
const accountLink = (address) => link(`account/${encodeURIComponent(address)}`, address);

const count = (n) => (typeof n === "number" ? n.toLocaleString("en-US") : String(n));
const time = (ms) => new Date(Number(ms)).toISOString().replace("T", " ").replace(/\.\d+Z$/, "");

/** A rate in hashes per second with a unit: 1.53 MH/s. */
function rate(hashes) {
  const units = ["H/s", "kH/s", "MH/s", "GH/s", "TH/s", "PH/s", "EH/s"];
  let value = Number(hashes);
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit += 1;
  }
  return `${value.toFixed(unit ? 2 : 0)} ${units[unit]}`;
}

function bytes(n) {
  const value = Number(n);
  if (value < 1024) return `${value} B`;
  if (value < 1024 * 1024) return `${(value / 1024).toFixed(1)} KiB`;
  return `${(value / 1024 / 1024).toFixed(1)} MiB`;
}

function setText(id, text) {
  document.getElementById(id).textContent = text;
}

/** A table with a header row; each row is a `<tr>` or a list of cells. */
function table(id, columns, rows) {
  const head = el("tr", {}, ...columns.map((c) => el("th", {}, c)));
  const body = rows.map((row) => (row instanceof Node ? row : el("tr", {}, ...row.map((c) => el("td", {}, c)))));
  return el("table", { id }, el("thead", {}, head), el("tbody", {}, ...body));
}

/** A list of label/value pairs. */
function facts(pairs) {
  return el("dl", { class: "facts" }, ...pairs.flatMap(([label, value]) => [el("dt", {}, label), el("dd", {}, value)]));
}

function transactions(id, txs) {
  const rows = txs.map((tx) => [
    txLink(tx.id),
    tx.sender === "0" ? el("span", { class: "reward" }, "block reward") : accountLink(tx.sender),
    accountLink(tx.recipient),
    count(tx.amount),
    count(tx.fee),
    count(tx.nonce),
  ]);
  return rows.length ? table(id, ["id", "from", "to", "amount", "fee", "nonce"], rows) : el("p", {}, "None.");
}

/** The main chain from height `from` (the latest blocks if null), `limit` blocks, newest first. */
async function blocksList(from, limit) {
  const query = from === null ? `limit=${limit}` : `from=${from}&limit=${limit}`;
  const page = await get(`/blocks?${query}`);
  const headers = page.headers;
  const rows = headers
    .slice()
    .reverse()
    .map((h) =>
      el(
        "tr",
        { "data-height": h.height, "data-hash": h.hash },
        el("td", {}, blockLink(h.hash, h.height)),
        el("td", { class: "hash" }, blockLink(h.hash)),
        el("td", {}, time(h.timestamp_ms)),
        el("td", {}, count(h.transactions)),
        el("td", {}, bytes(h.size)),
      ),
    );
  const pager = el("nav", { class: "pager" });
  const last = headers.length ? headers[headers.length - 1].height : page.tip_height;
  if (last < page.tip_height) {
    pager.append(el("a", { id: "newer", href: `#/blocks?from=${last + 1}` }, "← newer"), link("", "latest"));
  }
  if (headers.length && headers[0].height > 0) {
    const first = headers[0].height;
    const older = `#/blocks?from=${Math.max(0, first - PAGE)}&limit=${Math.min(PAGE, first)}`;
    pager.append(el("a", { id: "older", href: older }, "older →"));
  }
  const list = rows.length
    ? table("blocks", ["height", "hash", "time (UTC)", "transactions", "size"], rows)
    : el("p", {}, `No main-chain block from height ${from}.`, " ", link("", "Latest blocks"));
  return [el("h2", {}, "Blocks"), list, pager];
}

async function mempoolList(limit) {
  const pool = await get(`/mempool?limit=${limit}`);
  const summary = el("p", { id: "mempool-summary" }, `${count(pool.size)} transfers waiting, ${bytes(pool.bytes)}`);
  if (pool.size > pool.oldest.length) summary.append(` (the oldest ${pool.oldest.length} below)`);
  return [el("h2", {}, link("mempool", "Mempool")), summary, transactions("mempool", pool.oldest)];
}

async function home() {
  const [blocks, pool] = await Promise.all([blocksList(null, PAGE), mempoolList(PAGE)]);
  return [...blocks, ...pool];
}

async function blocks(route) {
  const from = route.params.get("from") || "";
  const limit = Number(route.params.get("limit") || PAGE);
  const size = Number.isInteger(limit) && limit >= 1 ? Math.min(limit, PAGE) : PAGE;
  return blocksList(/^\d+$/.test(from) ? Number(from) : null, size);
}

async function block(route) {
  if (!HEX64.test(route.arg)) throw new Error("A block hash is 64 hex characters.");
  const { header, block } = await get(`/blocks/${route.arg}`);
  return [
    el("h2", {}, `Block ${header.height}`),
    facts([
      ["hash", el("span", { id: "block-hash", class: "hash" }, header.hash)],
      ["height", count(header.height)],
      ["main chain", header.main_chain ? "yes" : "no (side branch)"],
      ["previous", header.height === 0 ? "none (genesis)" : blockLink(header.previous_hash)],
      ["time (UTC)", time(header.timestamp_ms)],
      ["bits", `0x${Number(header.bits).toString(16).padStart(8, "0")}`],
      ["nonce", count(header.nonce)],
      ["size", bytes(header.size)],
      ["transaction root", block.tx_root],
      ["version", block.version],
    ]),
    el("h3", {}, `Transactions (${block.transactions.length})`),
    transactions("block-transactions", block.transactions),
  ];
}

async function tx(route) {
  if (!HEX64.test(route.arg)) throw new Error("A transaction id is 64 hex characters.");
  const found = await get(`/transactions/${route.arg}`);
  const t = found.transaction;
  const confirmed = found.status === "confirmed";
  const where = confirmed ? [["block", blockLink(found.block_hash)], ["height", count(found.height)]] : [];
  return [
    el("h2", {}, "Transaction"),
    facts([
      ["id", el("span", { class: "hash" }, t.id)],
      ["status", el("span", { id: "tx-status", class: found.status }, found.status)],
      ...where,
      ["from", t.sender === "0" ? "block reward" : accountLink(t.sender)],
      ["to", accountLink(t.recipient)],
      ["amount", count(t.amount)],
      ["fee", count(t.fee)],
      ["nonce", count(t.nonce)],
      ["signature", el("span", { class: "hash" }, t.signature || "none (a reward)")],
    ]),
  ];
}

async function account(route) {
  if (!HEX64.test(route.arg)) throw new Error("An address is 64 hex characters.");
  const a = await get(`/accounts/${route.arg}`);
  const shown = notice ? [el("p", { class: "notice" }, notice)] : [];
  notice = "";
  return [
    el("h2", {}, "Account"),
    ...shown,
    facts([
      ["address", el("span", { class: "hash" }, a.address)],
      ["balance", el("span", { id: "account-balance" }, count(a.balance))],
      ["nonce", count(a.nonce)],
      ["next nonce", count(a.pending_nonce)],
    ]),
  ];
}

async function mempool() {
  return mempoolList(100);
}

/** Finds what `text` names (a height, or a block hash, a transaction id or an address, tried in
 * that order) and moves to its page. */
async function search(route) {
  const text = route.arg.trim();
  if (/^\d+$/.test(text)) return go(`block/${(await get(`/blocks/height/${text}`)).header.hash}`);
  if (!HEX64.test(text)) throw new Error("Search for a block hash, a height, a transaction id or an address.");
  const key = text.toLowerCase();
  if ((await api(`/blocks/${key}`)).ok) return go(`block/${key}`);
  if ((await api(`/transactions/${key}`)).ok) return go(`tx/${key}`);
  await get(`/accounts/${key}`);
  notice = "No block or transaction has this id here; shown as an address.";
  return go(`account/${key}`);
}

function go(route) {
  location.replace(`#/${route}`);
  return null;
}

const pages = { home, blocks, block, tx, account, mempool, search };

/** The page the URL fragment names, its argument and its query. */
function currentRoute() {
  const [path, query] = location.hash.replace(/^#\/?/, "").split("?");
  const [name, ...rest] = path.split("/");
  let arg = "";
  try {
    arg = decodeURIComponent(rest.join("/"));
  } catch (e) {
    arg = "";
  }
  return { name: name || "home", arg, params: new URLSearchParams(query || "") };
}

async function render() {
  const seq = ++renderSeq;
  const route = currentRoute();
  const page = pages[route.name];
  let content;
  let shown = route.name;
  try {
    if (!page) throw new Error(`No page ${route.name}.`);
    content = await page(route);
  } catch (e) {
    const message = el("p", { id: "error", class: "error" }, e.message);
    content = [el("h2", {}, "Not found"), message, link("", "Latest blocks")];
    shown = "error";
  }
  if (seq !== renderSeq || content === null) return;
  view.dataset.view = shown;
  view.replaceChildren(...content);
}

function showStatus(s) {
  setText("node-id", s.node_id);
  setText("chain-id", s.chain_id);
  setText("tip-height", s.height);
  setText("tip-hash", s.tip);
  document.getElementById("tip-link").setAttribute("href", `#/block/${encodeURIComponent(s.tip)}`);
  setText("difficulty-bits", Number(s.difficulty_bits).toFixed(2));
  setText("next-bits", `0x${s.next_bits}`);
  setText("hash-rate", rate(s.hash_rate));
  setText("network-hash-rate", rate(s.network_hash_rate));
  setText("mempool-size", count(s.mempool));
  setText("orphans", count(s.orphans));
  setText("mining", s.mining);
  setText("kafka", s.kafka_reachable ? "reachable" : "unreachable");
  document.getElementById("kafka").className = `value ${s.kafka_reachable ? "good" : "bad"}`;
  setText("halted", s.halted ? `yes: ${s.halted}` : "no");
  document.getElementById("halted").className = `value ${s.halted ? "bad" : "good"}`;
  const warning = document.getElementById("warning");
  warning.hidden = !s.warning;
  warning.textContent = s.warning || "";
}

/** Reads `/status`, shows it, and redraws a page that shows the tip or the mempool when they
 * changed. A call made while a read is under way reads again once it ends, so the page never
 * stays on an answer older than the event that asked for it. */
async function poll() {
  if (polling) {
    pollAgain = true;
    return;
  }
  polling = true;
  try {
    const s = await get("/status");
    showStatus(s);
    const moved = tip !== null && s.tip !== tip;
    const pooled = mempoolSize !== null && s.mempool !== mempoolSize;
    tip = s.tip;
    mempoolSize = s.mempool;
    document.body.dataset.live = following;
    const how = following === "events" ? "Following the node's events" : "Polling the node";
    setText("live", `${how}; updated ${new Date().toLocaleTimeString()}.`);
    const name = currentRoute().name;
    if ((name === "home" && (moved || pooled)) || (name === "mempool" && pooled)) render();
  } catch (e) {
    document.body.dataset.live = "no";
    setText("live", `The node does not answer: ${e.message}`);
  } finally {
    polling = false;
    if (pollAgain) {
      pollAgain = false;
      poll();
    }
  }
}

function startPolling() {
  following = "polling";
  if (pollTimer === null) pollTimer = setInterval(poll, POLL_MS);
}

function stopPolling() {
  following = "events";
  if (pollTimer !== null) clearInterval(pollTimer);
  pollTimer = null;
}

/** Shows the tip an event announced, before `/status` is read for the rest. */
function showTip(event) {
  const announced = JSON.parse(event.data, exact);
  setText("tip-height", announced.height);
  setText("tip-hash", announced.hash);
  document.getElementById("tip-link").setAttribute("href", `#/block/${encodeURIComponent(announced.hash)}`);
  poll();
}

/** Follows the node through `/events`. While the stream is down the page polls; the browser
 * reconnects a dropped stream by itself, and a refused one (503 past the node's subscriber
 * bound) is asked for again after `STREAM_RETRY_MS`. */
function listen() {
  if (typeof EventSource !== "function") {
    startPolling();
    return;
  }
  stream = new EventSource("/events");
  stream.addEventListener("open", stopPolling);
  stream.addEventListener("tip", showTip);
  for (const name of ["halted", "resumed"]) stream.addEventListener(name, poll);
  stream.addEventListener("reset", () => {
    poll();
    render();
  });
  stream.addEventListener("error", () => {
    startPolling();
    poll();
    if (stream.readyState === EventSource.CLOSED) setTimeout(listen, STREAM_RETRY_MS);
  });
}

// A page left for another one may be kept whole in the back/forward cache, its stream open:
// a few such pages would take all of the browser's six connections to this node. The stream is
// closed when the page is left and opened again if the page comes back.
window.addEventListener("pagehide", () => stream?.close());
window.addEventListener("pageshow", (event) => {
  if (!event.persisted) return;
  listen();
  poll();
});

document.getElementById("search").addEventListener("submit", (event) => {
  event.preventDefault();
  const text = document.getElementById("search-input").value.trim();
  if (!text) return;
  const target = `#/search/${encodeURIComponent(text)}`;
  if (location.hash === target) render();
  else location.hash = target;
});
window.addEventListener("hashchange", render);
poll();
render();
listen();
setInterval(() => {
  if (following === "events") poll();
}, REFRESH_MS);
