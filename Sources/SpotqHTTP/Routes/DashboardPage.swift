/// The dashboard: one self-contained page. Every value from the server is put into the page
/// as text (never as HTML), so a hostile dead-letter body or reason stays text.
enum DashboardPage {
    static let html = #"""
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>spotq</title>
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 0; background: #f6f7f9; color: #1b1f24; }
  header { background: #1b1f24; color: #fff; padding: 10px 20px; display: flex; gap: 16px; align-items: center; }
  header h1 { font-size: 18px; margin: 0; }
  header form { margin-left: auto; display: flex; gap: 6px; }
  main { padding: 16px 20px; display: grid; gap: 16px; }
  .cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(150px, 1fr)); gap: 12px; }
  .card, section { background: #fff; border-radius: 8px; box-shadow: 0 1px 2px rgba(0,0,0,.08); padding: 12px 14px; }
  .card .value { font-size: 22px; font-weight: 600; }
  .card .label { color: #5b6570; font-size: 12px; }
  table { border-collapse: collapse; width: 100%; }
  th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid #eceef1; vertical-align: top; }
  th { color: #5b6570; font-weight: 500; font-size: 12px; }
  td.num { text-align: right; font-variant-numeric: tabular-nums; }
  .bar { background: #eceef1; border-radius: 4px; height: 10px; width: 160px; }
  .bar div { background: #2f7d4f; height: 10px; border-radius: 4px; }
  #status { font-size: 12px; color: #c9d1d9; }
  .error { color: #b3261e; }
  button { cursor: pointer; }
  svg { width: 100%; height: 180px; }
  .legend span { margin-right: 12px; font-size: 12px; }
  code { font-size: 12px; word-break: break-all; }
</style>
</head>
<body>
<header>
  <h1>spotq</h1>
  <span id="status">enter the admin token (SPOTQ_ADMIN_TOKEN) to see the fleet</span>
  <form id="token-form"><input id="token" type="password" placeholder="admin token" autocomplete="off"><button>Use</button></form>
</header>
<main>
  <div class="cards" id="cards"></div>
  <section><h2>Work waiting, last hour</h2>
    <div class="legend"><span style="color:#1f6feb">■ ready</span><span style="color:#d4a72c">■ held by pods</span></div>
    <svg id="plot" viewBox="0 0 600 180" preserveAspectRatio="none"></svg></section>
  <section><h2>Batches</h2><table id="batches"></table></section>
  <section><h2>Pods</h2><table id="pods"></table></section>
  <section><h2>Dead letters</h2><table id="dead-letters"></table></section>
</main>
<script>
"use strict";
const tokenKey = "spotq-admin-token";
function token() { return sessionStorage.getItem(tokenKey) || ""; }
function setStatus(text, error) { const s = document.getElementById("status"); s.textContent = text; s.className = error ? "error" : ""; }
function el(tag, text, attrs) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  return node;
}
function usd(v) { return v == null ? "–" : v.toFixed(4); }
function table(id, headers, rows) {
  const t = document.getElementById(id); t.replaceChildren();
  const head = el("tr"); headers.forEach(h => head.appendChild(el("th", h))); t.appendChild(head);
  if (rows.length === 0) { const r = el("tr"); r.appendChild(el("td", "none", {colspan: headers.length})); t.appendChild(r); }
  rows.forEach(cells => { const r = el("tr"); cells.forEach(c => r.appendChild(c instanceof Node ? c : el("td", c))); t.appendChild(r); });
}
function num(v) { return el("td", v, {class: "num"}); }
// What a pod's worker said it was doing (its heartbeat), e.g. "generating item 12".
function doing(p) {
  if (!p.activity) return "–";
  const words = [p.activity.replaceAll("_", " ")];
  if (p.activity_item_id != null) words.push("item " + p.activity_item_id);
  if (p.activity_asset) words.push(p.activity_asset);
  if (p.activity_bytes != null) words.push("(" + (p.activity_bytes / 1e6).toFixed(1) + " MB)");
  return words.join(" ");
}
function ago(at, now) {
  if (!at) return "–";
  const s = Math.max(0, Math.round((Date.parse(now) - Date.parse(at)) / 1000));
  return s < 120 ? s + " s ago" : s < 7200 ? Math.floor(s / 60) + " min ago" : Math.floor(s / 3600) + " h ago";
}
function card(label, value, id) {
  const c = el("div", null, {class: "card", id: id});
  c.appendChild(el("div", value, {class: "value"})); c.appendChild(el("div", label, {class: "label"})); return c;
}
function plot(samples) {
  const svg = document.getElementById("plot"); svg.replaceChildren();
  if (samples.length < 2) { const t = document.createElementNS("http://www.w3.org/2000/svg", "text"); t.setAttribute("x", 10); t.setAttribute("y", 90); t.textContent = "no samples yet (the server's demand component takes one every few seconds)"; svg.appendChild(t); return; }
  const t0 = Date.parse(samples[0].at), t1 = Date.parse(samples[samples.length - 1].at) || t0 + 1;
  const max = Math.max(1, ...samples.map(s => s.ready + s.unacknowledged));
  for (const [key, color] of [["ready", "#1f6feb"], ["unacknowledged", "#d4a72c"]]) {
    const line = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
    line.setAttribute("fill", "none"); line.setAttribute("stroke", color); line.setAttribute("stroke-width", "2");
    line.setAttribute("points", samples.map(s => `${(Date.parse(s.at) - t0) / Math.max(1, t1 - t0) * 600},${175 - s[key] / max * 165}`).join(" "));
    svg.appendChild(line);
  }
  const label = document.createElementNS("http://www.w3.org/2000/svg", "text");
  label.setAttribute("x", 4); label.setAttribute("y", 14); label.textContent = `max ${max}`; svg.appendChild(label);
}
async function replay(id) {
  const cell = document.querySelector(`[data-replay-status="${id}"]`);
  cell.textContent = "replaying…";
  const answer = await fetch(`/v1/ops/dead-letters/${id}/replay`, {method: "POST", headers: {"Authorization": "Bearer " + token()}});
  const body = await answer.json().catch(() => ({}));
  cell.textContent = answer.ok ? "replayed" : ("not replayed: " + (body.error || answer.status));
  cell.className = answer.ok ? "" : "error";
  if (answer.ok) setTimeout(refresh, 300);
}
async function refresh() {
  if (!token()) return;
  let data;
  try {
    const answer = await fetch("/v1/ops/overview", {headers: {"Authorization": "Bearer " + token()}});
    data = await answer.json();
    if (!answer.ok) { setStatus(data.error || ("HTTP " + answer.status), true); return; }
  } catch (error) { setStatus("cannot reach the server: " + error, true); return; }
  const items = data.summary.items_by_status, pods = data.summary.pods_by_state;
  const live = Object.entries(pods).filter(([k]) => k !== "terminated").reduce((a, [, v]) => a + v, 0);
  document.getElementById("cards").replaceChildren(
    card("images done", items.done || 0, "card-done"), card("waiting (pending, planned, queued)", (items.pending || 0) + (items.planned || 0) + (items.queued || 0), "card-waiting"),
    card("running", items.running || 0, "card-running"), card("failed", items.failed || 0, "card-failed"),
    card("live pods", live, "card-pods"), card("USD per hour now", usd(data.summary.usd_per_hour_now), "card-usd-hour"),
    card("USD today (UTC)", usd(data.summary.usd_today), "card-usd-today"), card("USD per image", data.usd_per_image == null ? "–" : data.usd_per_image.toFixed(6), "card-usd-image"),
    card("dead letters", data.summary.dead_letters, "card-dead"));
  plot(data.queue_history);
  table("batches", ["batch", "status", "progress", "done", "failed", "left", "pods", "est. USD", "USD"], data.batches.map(b => {
    const bar = el("div", null, {class: "bar"}); const fill = el("div"); fill.style.width = (b.items ? Math.round(b.done / b.items * 100) : 0) + "%"; bar.appendChild(fill);
    const cell = el("td"); cell.appendChild(bar);
    return [b.id, b.status, cell, num(b.done), num(b.failed), num(b.remaining), num(b.live_pods), num(usd(b.estimated_usd)), num(usd(b.accrued_usd))];
  }));
  table("pods", ["pod", "provider id", "batch", "market", "state", "provider", "USD/h", "USD", "reclaims", "doing", "since", "progress", "last error"], data.pods.map(p =>
    [p.id, p.provider_pod_id || "–", p.batch_id || "–", p.spot ? "spot" : "on-demand", p.state, p.provider_status || "–", num(usd(p.usd_per_hour)), num(usd(p.accrued_usd)), num(p.interruptions),
     doing(p), ago(p.activity_since, data.generated_at), ago(p.progress_at, data.generated_at), p.last_error || ""]));
  table("dead-letters", ["id", "when", "from", "reason", "body", "replays", ""], data.dead_letters.map(d => {
    const button = el("button", "Replay", {"data-replay": d.id}); button.addEventListener("click", () => replay(d.id));
    const action = el("td"); action.appendChild(button); action.appendChild(el("span", "", {"data-replay-status": d.id}));
    const body = el("td"); body.appendChild(el("code", d.body));
    return [d.id, new Date(d.dead_lettered_at).toLocaleString(), d.origin_queue || "?", d.reason, body, num(d.replay_count), action];
  }));
  setStatus("updated " + new Date(data.generated_at).toLocaleTimeString(), false);
  document.body.setAttribute("data-loaded", "true");
}
document.getElementById("token-form").addEventListener("submit", event => {
  event.preventDefault();
  sessionStorage.setItem(tokenKey, document.getElementById("token").value);
  document.getElementById("token").value = "";
  refresh();
});
setInterval(refresh, 5000);
refresh();
</script>
</body>
</html>
"""#
}
