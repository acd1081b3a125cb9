"use strict";
// The ponder viewer: the problem table of one run at a time, and the reasoning trees of one
// problem across every run that has it. Trees are decompressed only when a problem opens.
(function () {
  const DATA = JSON.parse(document.getElementById("ponder-data").textContent);
  const CHUNKS = JSON.parse(document.getElementById("ponder-trees").textContent);
  const $ = (sel) => document.querySelector(sel);
  const COLUMNS = [
    ["id", "id", "text"], ["correct", "correct", "bool"], ["answer", "answer", "text"], ["reference", "reference", "text"],
    ["generated", "generated tokens", "num"], ["verifier_calls", "verifier calls", "num"], ["wall_s", "wall s", "num"],
    ["error", "error", "text"],
  ];
  const state = { run: 0, sort: null, desc: false, problem: null };
  const byId = DATA.runs.map((run) => new Map(run.rows.map((r) => [r.id, r])));
  const chunkCache = new Map();

  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") e.className = v;
      else if (k === "text") e.textContent = v;
      else e.setAttribute(k, v);
    }
    for (const kid of kids) e.append(kid);
    return e;
  }
  const fmt = (v, digits) => (v === null || v === undefined ? "-" : typeof v === "number" && digits !== undefined ? v.toFixed(digits) : String(v));

  // -- trees, decompressed on demand ----------------------------------------------------------
  async function chunk(run, k) {
    const key = run + "/" + k;
    if (!chunkCache.has(key)) {
      chunkCache.set(key, (async () => {
        const bytes = Uint8Array.from(atob(CHUNKS[run][k]), (c) => c.charCodeAt(0));
        const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
        return JSON.parse(await new Response(stream).text());
      })());
    }
    return chunkCache.get(key);
  }

  // -- damaged traces -------------------------------------------------------------------------
  function showDamaged() {
    const items = DATA.runs.flatMap((run) => run.damaged.map((d) => el("li", { text: `${run.name}: ${d.file} (problem ${d.problem}): ${d.why}` })));
    if (!items.length) return;
    const box = $("#damaged");
    box.append(el("strong", { text: `${items.length} trace file(s) could not be read; their problems are shown without a tree:` }), el("ul", {}, ...items));
    box.hidden = false;
  }

  // -- the run buttons and the problem table --------------------------------------------------
  function showRuns() {
    const nav = $("#runs");
    DATA.runs.forEach((run, i) => {
      const s = run.summary || {};
      const acc = s.accuracy === undefined ? null : s.accuracy;
      const b = el("button", { class: i === state.run ? "on" : "", "data-run": String(i), "data-accuracy": acc === null ? "" : String(acc) },
        `${run.name}: ${run.rows.length} problems, accuracy ${fmt(acc, 3)}`);
      b.addEventListener("click", () => { state.run = i; nav.querySelectorAll("button").forEach((x, j) => x.classList.toggle("on", j === i)); drawTable(); });
      nav.append(b);
    });
    const tr = el("tr");
    for (const [key, label] of COLUMNS) {
      const th = el("th", { "data-key": key, text: label });
      th.addEventListener("click", () => {
        state.desc = state.sort === key ? !state.desc : false;
        state.sort = key;
        drawTable();
      });
      tr.append(th);
    }
    $("#problem-table thead").append(tr);
    for (const id of ["#f-wrong", "#f-errors"]) $(id).addEventListener("change", drawTable);
    $("#f-text").addEventListener("input", drawTable);
  }

  function visible(rows) {
    const wrong = $("#f-wrong").checked, errors = $("#f-errors").checked;
    const text = $("#f-text").value.trim().toLowerCase();
    return rows.filter((r) => (!wrong || r.correct === false) && (!errors || !!r.error) &&
      (!text || [r.id, r.answer, r.reference, r.error, r.question].some((v) => v !== null && v !== undefined && String(v).toLowerCase().includes(text))));
  }

  function sortKey(r, key, kind) {
    const v = r[key];
    if (kind === "bool") return v === true ? 1 : v === false ? 0 : -1;
    if (kind === "num") return typeof v === "number" ? v : -Infinity;
    return v === null || v === undefined ? "" : String(v);
  }

  function drawTable() {
    const run = DATA.runs[state.run];
    let rows = visible(run.rows);
    if (state.sort) {
      const kind = COLUMNS.find((c) => c[0] === state.sort)[2];
      const sign = state.desc ? -1 : 1;
      rows = rows.slice().sort((a, b) => {
        const x = sortKey(a, state.sort, kind), y = sortKey(b, state.sort, kind);
        return x < y ? -sign : x > y ? sign : 0;
      });
    }
    document.querySelectorAll("#problem-table th").forEach((th) => {
      th.classList.toggle("asc", th.dataset.key === state.sort && !state.desc);
      th.classList.toggle("desc", th.dataset.key === state.sort && state.desc);
    });
    const body = document.createDocumentFragment();
    for (const r of rows) {
      const tr = el("tr", { "data-id": r.id });
      if (r.id === state.problem) tr.className = "open";
      for (const [key, , kind] of COLUMNS) {
        const v = r[key];
        const td = el("td", { text: key === "correct" ? (v === true ? "yes" : v === false ? "no" : "-") : key === "wall_s" ? fmt(v, 2) : fmt(v) });
        if (kind === "num") td.className = "num";
        if (key === "correct") td.className = v === true ? "yes" : v === false ? "no" : "";
        if (key === "error" && v) { td.className = "err"; td.title = v; }
        tr.append(td);
      }
      body.append(tr);
    }
    const tbody = $("#problem-table tbody");
    tbody.replaceChildren(body);
    const graded = rows.filter((r) => r.correct !== null && r.correct !== undefined);
    const acc = graded.length ? graded.filter((r) => r.correct).length / graded.length : null;
    $("#row-count").textContent = `${rows.length} of ${run.rows.length} problems shown; accuracy of those shown ${fmt(acc, 3)}`;
    $("#row-count").dataset.rows = String(rows.length);
  }

  // -- one problem: a tree per run --------------------------------------------------------------
  function label(n) {
    if (n.subrun) return `sub-run ${n.subrun}` + (n.extra && n.extra.seed !== undefined ? ` (seed ${n.extra.seed})` : "");
    if (n.parent === null) return `prompt: ${n.tokens} tokens`;
    const score = n.score === null || n.score === undefined ? "" : ` · ${Number(n.score).toFixed(2)}`;
    return `#${n.id}${score} · ${n.tokens} tok · ${n.step.replace(/\s+/g, " ").trim().slice(0, 70) || "(empty)"}`;
  }

  function detail(box, n) {
    const dl = el("dl");
    const add = (k, v) => dl.append(el("dt", { text: k }), el("dd", { text: v }));
    add("node", `#${n.id}` + (n.parent === null ? " (root)" : ` (parent #${n.parent})`));
    add("status", n.marks.length ? n.marks.join(", ") : "open");
    add("score", fmt(n.score));
    add("finish", fmt(n.finish));
    add("generated tokens", n.parent === null ? "- (prompt " + n.tokens + ")" : String(n.tokens));
    add("cached tokens", fmt(n.cached));
    const dur = typeof n.t_start === "number" && typeof n.t_end === "number" ? ` (${(n.t_end - n.t_start).toFixed(3)} s)` : "";
    add("time", `${fmt(n.t_start)} s to ${fmt(n.t_end)} s${dur}`);
    if (n.subrun) add("sub-run", n.subrun);
    for (const [k, v] of Object.entries(n.extra || {})) add(k, typeof v === "object" ? JSON.stringify(v) : String(v));
    box.replaceChildren(dl, el("pre", { class: "step", text: n.step || "(no text)" }));
  }

  function drawTree(nodes, box) {
    const kids = new Map();
    for (const n of nodes) if (n.parent !== null) (kids.get(n.parent) || kids.set(n.parent, []).get(n.parent)).push(n);
    const byNode = new Map(nodes.map((n) => [n.id, n]));
    const item = (n) => {
      const li = el("li");
      const children = kids.get(n.id) || [];
      const fold = el("button", { class: "fold", "aria-label": "collapse", text: children.length ? "\u25BE" : "" });
      const node = el("span", { class: ["node", ...n.marks, ...(n.subrun ? ["subrun"] : [])].join(" "), "data-node-id": String(n.id),
                                "data-status": n.marks.join(" "), tabindex: "0", text: label(n) });
      li.append(fold, node);
      if (n.subrun) li.classList.add("sub");
      if (children.length) li.append(el("ul", {}, ...children.map(item)));
      return li;
    };
    const roots = nodes.filter((n) => n.parent === null);
    const tree = el("div", { class: "tree" }, el("ul", {}, ...roots.map(item)));
    const info = el("div", { class: "detail" }, el("p", { class: "note", text: "click a node to see its step" }));
    tree.addEventListener("click", (ev) => {
      const f = ev.target.closest(".fold");
      if (f) {
        const li = f.parentElement;
        li.classList.toggle("collapsed");
        f.textContent = li.querySelector("ul") ? (li.classList.contains("collapsed") ? "\u25B8" : "\u25BE") : "";
        return;
      }
      const n = ev.target.closest(".node");
      if (!n) return;
      tree.querySelectorAll(".node.selected").forEach((x) => x.classList.remove("selected"));
      n.classList.add("selected");
      detail(info, byNode.get(Number(n.dataset.nodeId)));
    });
    box.append(tree, info);
  }

  async function openProblem(id) {
    state.problem = id;
    const section = $("#problem"), trees = $("#trees");
    trees.dataset.ready = "";
    section.hidden = false;
    $("#problem-title").textContent = `Problem ${id}`;
    document.querySelectorAll("#problem-table tbody tr").forEach((tr) => tr.classList.toggle("open", tr.dataset.id === id));
    const cols = [];
    for (let i = 0; i < DATA.runs.length; i++) {
      const row = byId[i].get(id);
      if (!row) continue;
      const col = el("div", { class: "tree-col", "data-run": String(i) },
        el("h3", { text: DATA.runs[i].name }),
        row.question ? el("p", { class: "question", text: `${row.strategy} at ${row.at}: ${row.question}` }) : "",
        el("p", { class: "facts", text: `answer ${fmt(row.answer)} · reference ${fmt(row.reference)} · correct ${fmt(row.correct)} · ` +
          `${fmt(row.generated)} generated tokens · ${fmt(row.verifier_calls)} verifier calls · ${fmt(row.wall_s, 2)} s` + (row.error ? ` · error: ${row.error}` : "") }));
      if (row.chunk === null) {
        const bad = DATA.runs[i].damaged.find((d) => d.problem === id);
        col.append(el("p", { class: "missing", text: bad ? `no tree: ${bad.file} is ${bad.why}` : "no trace for this problem" }));
      } else {
        drawTree((await chunk(i, row.chunk))[id], col);
      }
      cols.push(col);
    }
    if (state.problem !== id) return; // another problem was opened meanwhile
    if (!cols.length) cols.push(el("p", { class: "missing", text: `no run has a problem ${id}` }));
    trees.replaceChildren(...cols);
    trees.dataset.ready = id;
    performance.mark("ponder-tree");
    section.scrollIntoView({ block: "start" });
  }

  function fromAddress() {
    const m = /(?:^|&)problem=([^&]*)/.exec(location.hash.slice(1));
    if (m) openProblem(decodeURIComponent(m[1])).catch(fail);
  }

  function fail(err) {
    const box = $("#damaged");
    box.append(el("p", { text: `viewer error: ${err && err.message ? err.message : err}` }));
    box.hidden = false;
    console.error(err);
  }

  try {
    showDamaged();
    showRuns();
    drawTable();
    $("#problem-table tbody").addEventListener("click", (ev) => {
      const tr = ev.target.closest("tr");
      if (tr) location.hash = "problem=" + encodeURIComponent(tr.dataset.id);
    });
    window.addEventListener("hashchange", fromAddress);
    fromAddress();
    document.documentElement.dataset.ready = "1";
    performance.mark("ponder-ready"); // bench/view.py reads when the page became interactive
  } catch (err) {
    fail(err);
  }
})();
