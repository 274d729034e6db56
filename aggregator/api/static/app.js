/* xmargin status page: a reference client of the public API (no build step, no dependencies).
 *
 * Reads:  GET /v1/users, GET /v1/users/{user}/margin, GET /v1/accounts/{caip10}/margin,
 *         GET /v1/users/{user}/margin/history, GET /v1/stream?user=… (server-sent events).
 * Money, prices and ratios arrive as decimal strings. They are rounded for display with exact
 * integer (BigInt) arithmetic; the only place they become floats is the chart's geometry.
 */
"use strict";

(() => {
  // ---------------------------------------------------------------- decimal strings

  const DECIMAL = /^(-?)(\d+)(?:\.(\d+))?$/;

  /** `text` as {neg, int, frac} rounded half away from zero to `places` decimals, or null. */
  function roundDecimal(text, places) {
    if (text === null || text === undefined) return null;
    const match = DECIMAL.exec(String(text).trim());
    if (!match) return null;
    const fraction = match[3] || "";
    let digits = BigInt(match[2] + fraction);
    const scale = fraction.length;
    if (scale > places) {
      const divisor = 10n ** BigInt(scale - places);
      const rest = digits % divisor;
      digits = digits / divisor + (2n * rest >= divisor ? 1n : 0n);
    } else if (scale < places) {
      digits *= 10n ** BigInt(places - scale);
    }
    const padded = digits.toString().padStart(places + 1, "0");
    return {
      neg: match[1] === "-" && digits !== 0n,
      int: places ? padded.slice(0, -places) : padded,
      frac: places ? padded.slice(-places) : "",
    };
  }

  /** `text` × 10^`shift`, as a decimal string (exact). */
  function shiftDecimal(text, shift) {
    const match = DECIMAL.exec(String(text).trim());
    if (!match) return null;
    let int = match[2];
    let frac = match[3] || "";
    while (shift > 0) {
      int += frac.charAt(0) || "0";
      frac = frac.slice(1);
      shift -= 1;
    }
    return `${match[1]}${int.replace(/^0+(?=\d)/, "")}${frac ? "." + frac : ""}`;
  }

  function groupThousands(int) {
    return int.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  }

  /** A decimal string for people: `places` decimals, thousands separators unless `plain`. */
  function formatDecimal(text, places, { plain = false, trim = false } = {}) {
    const rounded = roundDecimal(text, places);
    if (rounded === null) return text === null || text === undefined ? "—" : String(text);
    let frac = rounded.frac;
    if (trim) frac = frac.replace(/0+$/, "");
    const int = plain ? rounded.int : groupThousands(rounded.int);
    return `${rounded.neg ? "-" : ""}${int}${frac ? "." + frac : ""}`;
  }

  function usd(text) {
    if (text === null || text === undefined) return "—";
    const formatted = formatDecimal(text, 2);
    return formatted.startsWith("-") ? `-$${formatted.slice(1)}` : `$${formatted}`;
  }

  function price(text) {
    if (text === null || text === undefined) return "—";
    const rounded = roundDecimal(text, 2);
    // Sub-dollar prices keep more digits.
    const places = rounded && rounded.int === "0" ? 6 : 2;
    return `$${formatDecimal(text, places, { trim: places === 6 })}`;
  }

  function tokenAmount(text) {
    return formatDecimal(text, 6, { trim: true });
  }

  function percent(ratioText) {
    const shifted = shiftDecimal(ratioText, 2);
    if (shifted === null) return String(ratioText);
    const text = formatDecimal(shifted, 2);
    return `${text.startsWith("-") || /^0(\.0+)?$/.test(text) ? "" : "+"}${text} %`;
  }

  /** The health factor as the page shows it: 3 decimals, no grouping (tests compare it). */
  function healthFactorText(text) {
    return text === null || text === undefined ? "—" : formatDecimal(text, 3, { plain: true });
  }

  function isNegative(text) {
    return typeof text === "string" && text.trim().startsWith("-") && !/^-0*(\.0*)?$/.test(text);
  }

  const REASONS = {
    no_debt: "nothing is owed",
    no_exposure: "no exposure to this asset",
    price_invalid: "the oracle price failed its checks",
    stale: "its chain data is stale",
    unreachable: "no price move reaches liquidation",
  };

  function reasonText(reason) {
    return reason ? REASONS[reason] || reason.replace(/_/g, " ") : "";
  }

  // ---------------------------------------------------------------- times

  function timeText(iso) {
    if (!iso) return "—";
    const match = /^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}:\d{2})/.exec(iso);
    return match ? `${match[1]} ${match[2]} UTC` : iso;
  }

  function clockText(ms) {
    return new Date(ms).toISOString().slice(11, 19);
  }

  function ageText(secondsText) {
    const rounded = roundDecimal(secondsText, 0);
    if (rounded === null) return "—";
    let seconds = Number(rounded.int) * (rounded.neg ? -1 : 1);
    const sign = seconds < 0 ? "-" : "";
    seconds = Math.abs(seconds);
    if (seconds < 120) return `${sign}${seconds} s`;
    if (seconds < 7200) return `${sign}${Math.floor(seconds / 60)} min ${seconds % 60} s`;
    if (seconds < 172800) return `${sign}${Math.floor(seconds / 3600)} h ${Math.floor((seconds % 3600) / 60)} min`;
    return `${sign}${Math.floor(seconds / 86400)} d`;
  }

  // ---------------------------------------------------------------- DOM helpers

  const $ = (id) => document.getElementById(id);

  function setText(id, text) {
    const node = $(id);
    if (node) node.textContent = text;
    return node;
  }

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }

  function cell(text, className, title) {
    const td = el("td", className, text);
    if (title) td.title = title;
    return td;
  }

  function fillBody(tableId, rows, emptyText, columns) {
    const body = $(tableId).tBodies[0];
    body.replaceChildren();
    if (!rows.length) {
      const td = cell(emptyText, "muted");
      td.colSpan = columns;
      const tr = el("tr", "empty-row");
      tr.append(td);
      body.append(tr);
      return body;
    }
    for (const row of rows) body.append(row);
    return body;
  }

  function shortAccount(caip10) {
    if (!caip10) return "—";
    const parts = caip10.split(":");
    const address = parts.pop();
    const short = address.length > 14 ? `${address.slice(0, 6)}…${address.slice(-4)}` : address;
    return `${parts.join(":")}:${short}`;
  }

  // ---------------------------------------------------------------- API

  class ApiFailure extends Error {
    constructor(status, error) {
      super((error && error.message) || `HTTP ${status}`);
      this.status = status;
      this.code = error && error.code;
      this.field = error && error.field;
    }
  }

  async function api(path) {
    let response;
    try {
      response = await fetch(path, { headers: { Accept: "application/json" } });
    } catch (error) {
      throw new ApiFailure(0, { code: "network", message: "the API cannot be reached" });
    }
    let body = null;
    try {
      body = await response.json();
    } catch (error) {
      body = null;
    }
    if (!response.ok) throw new ApiFailure(response.status, body && body.error);
    return body;
  }

  // ---------------------------------------------------------------- state

  const state = {
    generation: 0, // bumped on every new selection: late answers for an old one are dropped
    target: null, // {kind: "user" | "account", value}
    user: null, // the user's name (history is per user)
    current: null, // the status on screen
    points: new Map(), // seq -> chart point
    source: null, // the EventSource
    retry: null,
  };

  // ---------------------------------------------------------------- rendering a status

  function render(status) {
    state.current = status;
    $("content").classList.remove("hidden");
    $("empty").classList.add("hidden");
    hideError();

    const name = status.user || (status.user_id !== null ? `user ${status.user_id}` : "—");
    setText("user-name", state.target && state.target.kind === "account"
      ? `${name} · via ${shortAccount(state.target.value)}` : name);
    setText("seq", status.seq === null || status.seq === undefined ? "—" : String(status.seq));
    const asOf = setText("as-of", timeText(status.as_of));
    asOf.dateTime = status.as_of || "";
    asOf.title = `published ${timeText(status.published_at)}`;
    setText("mode", status.mode || "standard");
    document.title = `${status.status} · ${name} — xmargin`;

    const badge = setText("status", status.status);
    badge.className = `badge status-${status.status}`;
    badge.dataset.status = status.status;
    badge.title = STATUS_HELP[status.status] || "";
    $("content").dataset.status = status.status;

    renderHealth(status);
    renderStale(status);

    setText("equity", usd(status.equity_usd)).classList.toggle("neg", isNegative(status.equity_usd));
    setText("collateral-value", usd(status.collateral_value_usd));
    setText("free-collateral", usd(status.free_collateral_usd));
    const sides = [
      ["wc", status.weighted_collateral_usd],
      ["req", status.requirement_usd],
      ["health", status.health_usd],
    ];
    for (const [prefix, value] of sides) {
      for (const side of ["init", "maint"]) {
        const text = value ? value[side] : null;
        setText(`${prefix}-${side}`, usd(text)).classList.toggle("neg", isNegative(text));
      }
    }

    renderLiquidation(status);
    renderLimits(status);
    renderHoldings(status);
    renderChains(status);
    renderPrices(status);
  }

  const STATUS_HELP = {
    healthy: "maintenance and initial health are positive",
    warning: "the health factor is under the warning level",
    margin_call: "initial health < 0: no new borrowing, add collateral",
    liquidatable: "maintenance health < 0: positions can be liquidated",
  };

  function renderHealth(status) {
    const hf = status.health_factor;
    const node = setText("health-factor", healthFactorText(hf));
    node.dataset.value = hf === null || hf === undefined ? "" : hf;
    node.title = hf === null || hf === undefined ? "" : `exact: ${hf}`;
    setText("health-factor-reason", hf === null || hf === undefined
      ? `(${status.health_factor_reason || "none"}: ${reasonText(status.health_factor_reason)})` : "");

    const fill = $("health-bar-fill");
    fill.className = `bar-fill status-${status.status}`;
    // The bar spans health factors 0..3 (a ratio, not money: a float is fine for geometry).
    const ratio = hf === null || hf === undefined ? 1 : Math.max(0, Math.min(1, Number(hf) / 3));
    fill.style.width = `${(ratio * 100).toFixed(2)}%`;
    fill.classList.toggle("bar-none", hf === null || hf === undefined);
    $("health-bar").setAttribute("aria-label",
      hf === null || hf === undefined ? `no health factor: ${reasonText(status.health_factor_reason)}`
        : `health factor ${healthFactorText(hf)}`);
  }

  function renderStale(status) {
    const node = $("stale");
    const parts = [];
    if (status.stale) {
      parts.push(status.stale_chains.length ? `stale: ${status.stale_chains.join(", ")}` : "stale inputs");
    }
    if (status.unpriced_assets && status.unpriced_assets.length) {
      parts.push(`unpriced: ${status.unpriced_assets.join(", ")}`);
    }
    node.textContent = parts.length ? parts.join(" · ") : "fresh: every input is within its max staleness";
    node.className = `stale-flag ${status.stale || parts.length ? "is-stale" : "fresh"}`;
    node.dataset.stale = status.stale ? "true" : "false";
  }

  function renderLiquidation(status) {
    const rows = (status.liquidation_prices || []).map((item) => {
      const tr = el("tr");
      tr.dataset.asset = item.asset;
      tr.append(cell(item.asset, "asset"), cell(price(item.price_usd), "num", item.price_usd || ""));
      if (item.liquidation_price_usd === null || item.liquidation_price_usd === undefined) {
        const reason = item.liquidation_price_usd_reason;
        tr.append(cell(`— ${reasonText(reason)}`, "num muted reason", reason || ""));
      } else {
        tr.append(cell(price(item.liquidation_price_usd), "num liq", item.liquidation_price_usd));
      }
      return tr;
    });
    fillBody("liquidation-prices", rows, "no assets", 3);
    const shock = status.liquidation_shock;
    setText("liquidation-shock", shock === null || shock === undefined ? "—" : percent(shock));
    setText("liquidation-shock-reason", shock === null || shock === undefined
      ? `(${status.liquidation_shock_reason}: ${reasonText(status.liquidation_shock_reason)})`
      : "uniform move of every non-stable price");
  }

  function renderLimits(status) {
    const rows = (status.limits || []).map((item) => {
      const tr = el("tr");
      tr.append(
        cell(item.asset, "asset"),
        cell(item.max_borrow === null ? "—" : tokenAmount(item.max_borrow), "num", item.max_borrow || ""),
        cell(item.max_withdraw === null ? "—" : tokenAmount(item.max_withdraw), "num", item.max_withdraw || ""),
      );
      return tr;
    });
    fillBody("limits", rows, "no limits", 3);
  }

  function chainKeys(status) {
    const keys = new Map();
    for (const chain of status.chains || []) if (chain.key) keys.set(chain.chain, chain.key);
    return keys;
  }

  function renderHoldings(status) {
    const keys = chainKeys(status);
    const holdings = [...(status.holdings || [])].sort((a, b) =>
      [a.chain, a.venue, a.account, a.asset].join("|").localeCompare([b.chain, b.venue, b.account, b.asset].join("|")));
    let previous = null;
    const rows = holdings.map((item) => {
      const tr = el("tr");
      const group = `${item.chain}|${item.venue}`;
      if (previous !== null && group !== previous) tr.className = "group-start";
      previous = group;
      const chainLabel = keys.has(item.chain) ? `${keys.get(item.chain)} (${item.chain})` : item.chain || "—";
      tr.append(
        cell(shortAccount(item.account), "mono", item.account || ""),
        cell(chainLabel, "", item.chain || ""),
        cell(item.venue || "—", "venue"),
        cell(item.kind || "—", `kind kind-${item.kind}`),
        cell(item.asset || "—", "asset"),
        cell(tokenAmount(item.amount), `num${isNegative(item.amount) ? " neg" : ""}`,
          item.amount_raw !== null && item.amount_raw !== undefined
            ? `${item.amount} (raw ${item.amount_raw}, ${item.decimals} decimals)` : item.amount || ""),
      );
      return tr;
    });
    fillBody("holdings", rows, "nothing held", 6);
  }

  function renderChains(status) {
    const rows = (status.chains || []).map((chain) => {
      const tr = el("tr");
      let stateText = "fresh";
      let stateClass = "ok";
      if (chain.stale) { stateText = "stale"; stateClass = "bad"; }
      if (chain.last_poll_failed) {
        stateText += ` · last poll failed${chain.last_poll_error ? ": " + chain.last_poll_error : ""}`;
        stateClass = "bad";
      }
      tr.append(
        cell(chain.chain, "mono"),
        cell(chain.key || "—"),
        cell(chain.height === null ? "—" : groupThousands(String(chain.height)), "num", chain.block_hash || ""),
        cell(timeText(chain.block_time), "", chain.block_time || ""),
        cell(ageText(chain.data_age_seconds), "num", chain.data_age_seconds ? `${chain.data_age_seconds} s` : ""),
        cell(chain.finality || "—"),
        cell(stateText, `state ${stateClass}`),
      );
      return tr;
    });
    fillBody("chains", rows, "no chains", 7);
  }

  function renderPrices(status) {
    const rows = (status.prices || []).map((item) => {
      const tr = el("tr");
      tr.append(
        cell(item.asset, "asset"),
        cell(price(item.price_usd), "num", item.price_usd || ""),
        cell(item.conf_usd === null ? "—" : price(item.conf_usd), "num", item.conf_usd || ""),
        cell(timeText(item.price_time), "", item.price_time || ""),
        cell(ageText(item.age_seconds), "num", item.age_seconds ? `${item.age_seconds} s` : ""),
        cell(item.valid ? "valid" : `invalid${item.invalid_reason ? ": " + item.invalid_reason : ""}`,
          `state ${item.valid ? "ok" : "bad"}`),
      );
      return tr;
    });
    fillBody("prices", rows, "no prices", 6);
  }

  // ---------------------------------------------------------------- history chart

  const SVG = "http://www.w3.org/2000/svg";

  function svg(tag, attributes, className) {
    const node = document.createElementNS(SVG, tag);
    for (const [key, value] of Object.entries(attributes || {})) node.setAttribute(key, String(value));
    if (className) node.setAttribute("class", className);
    return node;
  }

  function pointOf(item) {
    const when = Date.parse(item.as_of || item.recorded_at || item.published_at || "");
    const hf = item.health_factor;
    return {
      seq: item.seq,
      time: Number.isFinite(when) ? when : Date.now(),
      status: item.status,
      hfText: hf,
      hfReason: item.health_factor_reason,
      equityText: item.equity_usd,
      // Floats only for the geometry of the chart.
      hf: hf === null || hf === undefined ? null : Number(hf),
      equity: item.equity_usd === null || item.equity_usd === undefined ? null : Number(item.equity_usd),
    };
  }

  function addPoint(item) {
    if (item.seq === null || item.seq === undefined) return;
    state.points.set(item.seq, pointOf(item));
  }

  function drawChart() {
    const chart = $("history-chart");
    const width = Math.max(320, Math.round(chart.clientWidth || 900));
    const height = 260;
    chart.setAttribute("viewBox", `0 0 ${width} ${height}`);
    chart.replaceChildren();
    const points = [...state.points.values()].sort((a, b) => a.seq - b.seq);
    chart.dataset.points = String(points.length);
    chart.dataset.lastSeq = points.length ? String(points[points.length - 1].seq) : "";
    const note = $("history-note");
    if (!points.length) {
      chart.append(svg("text", { x: width / 2, y: height / 2, "text-anchor": "middle" }, "chart-empty"));
      chart.lastChild.textContent = "no history yet";
      note.textContent = "";
      return;
    }
    const pad = { left: 52, right: 84, top: 16, bottom: 30 };
    const innerW = width - pad.left - pad.right;
    const innerH = height - pad.top - pad.bottom;

    // x: time (by index when every point has the same time)
    const times = points.map((p) => p.time);
    const t0 = Math.min(...times);
    const t1 = Math.max(...times);
    const xOf = (p, i) => {
      if (points.length === 1) return pad.left + innerW / 2;
      if (t1 === t0) return pad.left + (innerW * i) / (points.length - 1);
      return pad.left + (innerW * (p.time - t0)) / (t1 - t0);
    };
    // left y: health factor from 0, with the liquidation line at 1
    const hfs = points.filter((p) => p.hf !== null && Number.isFinite(p.hf)).map((p) => p.hf);
    const hfTop = Math.max(1.5, (hfs.length ? Math.max(...hfs) : 1) * 1.15);
    const yHf = (v) => pad.top + innerH - (innerH * Math.min(v, hfTop)) / hfTop;
    // right y: equity
    const eqs = points.filter((p) => p.equity !== null && Number.isFinite(p.equity)).map((p) => p.equity);
    let e0 = eqs.length ? Math.min(...eqs) : 0;
    let e1 = eqs.length ? Math.max(...eqs) : 1;
    const spread = e1 - e0 || Math.max(1, Math.abs(e1) * 0.05);
    e0 -= spread * 0.1;
    e1 += spread * 0.1;
    const yEq = (v) => pad.top + innerH - (innerH * (v - e0)) / (e1 - e0);

    // frame and grid
    chart.append(svg("rect", { x: pad.left, y: pad.top, width: innerW, height: innerH }, "chart-frame"));
    for (const v of [0, 1, hfTop / 2, hfTop]) {
      const y = yHf(v);
      chart.append(svg("line", { x1: pad.left, x2: pad.left + innerW, y1: y, y2: y },
        v === 1 ? "chart-liq" : "chart-grid"));
      const label = svg("text", { x: pad.left - 6, y: y + 4, "text-anchor": "end" }, "chart-axis axis-hf");
      label.textContent = v.toFixed(v === 0 || v === 1 ? 0 : 2);
      chart.append(label);
    }
    const liqLabel = svg("text", { x: pad.left + 6, y: yHf(1) - 5 }, "chart-liq-label");
    liqLabel.textContent = "liquidation (HF 1)";
    chart.append(liqLabel);
    const equityMarks = eqs.length ? [...new Set([Math.min(...eqs), Math.max(...eqs)])] : [];
    for (const v of equityMarks) {
      const label = svg("text", { x: pad.left + innerW + 6, y: yEq(v) + 4 }, "chart-axis axis-eq");
      label.textContent = compactUsd(v);
      chart.append(label);
    }
    const first = svg("text", { x: pad.left, y: height - 8 }, "chart-axis");
    first.textContent = clockText(t0);
    chart.append(first);
    if (t1 !== t0) {
      const last = svg("text", { x: pad.left + innerW, y: height - 8, "text-anchor": "end" }, "chart-axis");
      last.textContent = `${clockText(t1)} UTC`;
      chart.append(last);
    }

    // lines (a gap where there is no health factor)
    let hfPath = "";
    let eqPath = "";
    let penDown = false;
    points.forEach((p, i) => {
      const x = xOf(p, i).toFixed(1);
      if (p.hf !== null && Number.isFinite(p.hf)) {
        hfPath += `${penDown ? "L" : "M"}${x},${yHf(p.hf).toFixed(1)} `;
        penDown = true;
      } else {
        penDown = false;
      }
      if (p.equity !== null && Number.isFinite(p.equity)) {
        eqPath += `${eqPath ? "L" : "M"}${x},${yEq(p.equity).toFixed(1)} `;
      }
    });
    if (eqPath) chart.append(svg("path", { d: eqPath.trim() }, "line-eq"));
    if (hfPath) chart.append(svg("path", { d: hfPath.trim() }, "line-hf"));

    points.forEach((p, i) => {
      const x = xOf(p, i);
      const tip = `seq ${p.seq} · ${timeText(new Date(p.time).toISOString())} · ${p.status}\n` +
        `health factor ${p.hfText === null || p.hfText === undefined ? "— (" + (p.hfReason || "none") + ")" : healthFactorText(p.hfText)}` +
        ` · equity ${usd(p.equityText)}`;
      if (p.equity !== null && Number.isFinite(p.equity)) {
        const dot = svg("circle", { cx: x.toFixed(1), cy: yEq(p.equity).toFixed(1), r: 2.5 }, "pt pt-eq");
        chart.append(dot);
      }
      const y = p.hf !== null && Number.isFinite(p.hf) ? yHf(p.hf) : pad.top + 6;
      const dot = svg("circle", { cx: x.toFixed(1), cy: y.toFixed(1), r: 4.5 },
        `pt pt-hf status-${p.status}${p.hf === null ? " pt-none" : ""}`);
      dot.setAttribute("data-seq", String(p.seq));
      const title = svg("title");
      title.textContent = tip;
      dot.append(title);
      chart.append(dot);
    });
    const newest = points[points.length - 1];
    note.textContent = `${points.length} point${points.length === 1 ? "" : "s"} (material status changes), ` +
      `newest seq ${newest.seq}`;
  }

  /** An axis label for a float equity (chart geometry only). */
  function compactUsd(value) {
    const abs = Math.abs(value);
    const sign = value < 0 ? "-" : "";
    if (abs >= 1e9) return `${sign}$${(abs / 1e9).toFixed(2)}B`;
    if (abs >= 1e6) return `${sign}$${(abs / 1e6).toFixed(2)}M`;
    if (abs >= 1e5) return `${sign}$${(abs / 1e3).toFixed(1)}k`;
    return `${sign}$${groupThousands(abs.toFixed(0))}`;
  }

  async function loadHistory(generation, user) {
    let cursor = null;
    for (let page = 0; page < 4; page += 1) {
      const query = new URLSearchParams({ limit: "50" });
      if (cursor) query.set("cursor", cursor);
      const body = await api(`/v1/users/${encodeURIComponent(user)}/margin/history?${query}`);
      if (generation !== state.generation) return;
      for (const item of body.items || []) addPoint(item);
      drawChart();
      cursor = body.next_cursor;
      if (!cursor) return;
    }
  }

  // ---------------------------------------------------------------- live stream

  function setLive(mode, text) {
    const node = $("live");
    node.className = `live live-${mode}`;
    node.dataset.state = mode;
    setText("live-text", text);
  }

  function closeStream() {
    if (state.retry) clearTimeout(state.retry);
    state.retry = null;
    if (state.source) state.source.close();
    state.source = null;
  }

  function openStream(generation) {
    closeStream();
    const target = state.target;
    const query = new URLSearchParams();
    query.set(target.kind === "account" ? "account" : "user", target.value);
    const source = new EventSource(`/v1/stream?${query}`);
    state.source = source;
    setLive("wait", "connecting…");
    source.addEventListener("open", () => {
      if (generation === state.generation) setLive("on", "live");
    });
    source.addEventListener("status", (event) => {
      if (generation !== state.generation) return;
      let status;
      try {
        status = JSON.parse(event.data);
      } catch (error) {
        return;
      }
      addPoint(status);
      const current = state.current;
      if (!current || current.seq === null || status.seq === null || status.seq >= current.seq) {
        if (!state.user && status.user) {
          state.user = status.user;
          loadHistory(generation, status.user).catch(() => {});
        }
        render(status);
      }
      drawChart();
      setLive("on", "live");
    });
    source.addEventListener("dropped", () => {
      // The server dropped us (too slow): start over with a fresh snapshot and refill the
      // chart from the history so that no change is missed.
      if (generation !== state.generation) return;
      closeStream();
      setLive("wait", "reconnecting…");
      state.retry = setTimeout(() => {
        if (generation !== state.generation) return;
        if (state.user) loadHistory(generation, state.user).catch(() => {});
        openStream(generation);
      }, 500);
    });
    source.addEventListener("error", () => {
      if (generation !== state.generation || state.source !== source) return;
      if (source.readyState === EventSource.CLOSED) {
        // The browser gave up (an HTTP error): try again later ourselves.
        setLive("off", "offline");
        state.retry = setTimeout(() => {
          if (generation === state.generation) openStream(generation);
        }, 5000);
      } else {
        setLive("wait", "reconnecting…");
      }
    });
  }

  // ---------------------------------------------------------------- errors

  function showError(message) {
    const node = $("error");
    node.textContent = message;
    node.classList.remove("hidden");
  }

  function hideError() {
    $("error").classList.add("hidden");
  }

  // ---------------------------------------------------------------- choosing a user / account

  function targetFromUrl() {
    const query = new URLSearchParams(window.location.search);
    if (query.get("account")) return { kind: "account", value: query.get("account").trim() };
    if (query.get("user")) return { kind: "user", value: query.get("user").trim() };
    return null;
  }

  function writeUrl(target, push) {
    const query = new URLSearchParams();
    if (target) query.set(target.kind, target.value);
    const url = `${window.location.pathname}${target ? "?" + query.toString() : ""}`;
    if (url === `${window.location.pathname}${window.location.search}`) return;
    if (push) window.history.pushState(null, "", url);
    else window.history.replaceState(null, "", url);
  }

  function syncControls(target) {
    const select = $("user-select");
    const input = $("account-input");
    if (target && target.kind === "user") {
      if (![...select.options].some((o) => o.value === target.value)) {
        select.append(new Option(target.value, target.value));
      }
      select.value = target.value;
      input.value = "";
    } else if (target && target.kind === "account") {
      select.value = "";
      input.value = target.value;
    } else {
      select.value = "";
      input.value = "";
    }
  }

  async function choose(target, { push = true } = {}) {
    state.generation += 1;
    const generation = state.generation;
    closeStream();
    state.target = target;
    state.user = null;
    state.current = null;
    state.points = new Map();
    writeUrl(target, push);
    syncControls(target);
    if (!target) {
      setLive("off", "offline");
      $("content").classList.add("hidden");
      $("empty").classList.remove("hidden");
      hideError();
      return;
    }
    $("content").dataset.loading = "true";
    const path = target.kind === "account"
      ? `/v1/accounts/${encodeURIComponent(target.value)}/margin`
      : `/v1/users/${encodeURIComponent(target.value)}/margin`;
    try {
      const status = await api(path);
      if (generation !== state.generation) return;
      render(status);
      addPoint(status);
      drawChart();
      state.user = status.user || (status.user_id !== null ? String(status.user_id) : target.value);
      openStream(generation);
      await loadHistory(generation, state.user);
    } catch (error) {
      if (generation !== state.generation) return;
      const what = target.kind === "account" ? `account ${target.value}` : `user ${target.value}`;
      const field = error.status === 422 && error.field ? ` (field: ${error.field})` : "";
      showError(`${what}: ${error.message}${field}`);
      if (error.code === "no_status") {
        // Known but not yet published: wait for its first status on the stream.
        $("content").classList.add("hidden");
        $("empty").classList.add("hidden");
        openStream(generation);
      } else if (!state.current) {
        $("content").classList.add("hidden");
        $("empty").classList.remove("hidden");
        setLive("off", "offline");
      }
    } finally {
      if (generation === state.generation) delete $("content").dataset.loading;
    }
  }

  async function loadUsers() {
    const select = $("user-select");
    const accounts = $("known-accounts");
    let cursor = null;
    for (let page = 0; page < 10; page += 1) {
      const query = new URLSearchParams({ limit: "100" });
      if (cursor) query.set("cursor", cursor);
      let body;
      try {
        body = await api(`/v1/users?${query}`);
      } catch (error) {
        return; // a caller that may not list users can still paste an account
      }
      for (const item of body.items || []) {
        const existing = [...select.options].find((o) => o.value === item.user);
        const option = existing || new Option(item.user, item.user);
        option.textContent = `${item.user}${item.accounts.length ? ` (${item.accounts.length} account${item.accounts.length === 1 ? "" : "s"})` : " (no accounts)"}`;
        if (!existing) select.append(option);
        for (const account of item.accounts) {
          const entry = document.createElement("option");
          entry.value = account;
          entry.label = item.user;
          accounts.append(entry);
        }
      }
      cursor = body.next_cursor;
      if (!cursor) break;
    }
    if (state.target && state.target.kind === "user") select.value = state.target.value;
  }

  function start() {
    $("user-select").addEventListener("change", (event) => {
      const value = event.target.value;
      choose(value ? { kind: "user", value } : null);
    });
    $("picker").addEventListener("submit", (event) => {
      event.preventDefault();
      const account = $("account-input").value.trim();
      if (account) choose({ kind: "account", value: account });
      else if ($("user-select").value) choose({ kind: "user", value: $("user-select").value });
    });
    window.addEventListener("popstate", () => choose(targetFromUrl(), { push: false }));
    let resizeTimer = null;
    window.addEventListener("resize", () => {
      clearTimeout(resizeTimer);
      resizeTimer = setTimeout(drawChart, 100);
    });
    loadUsers();
    choose(targetFromUrl(), { push: false });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
