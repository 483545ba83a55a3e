/* costguard console: one page over the public HTTP API (same origin), no framework.
 * The API key lives in sessionStorage only (this tab); every call sends it as a Bearer token.
 * Money arrives as decimal strings: shown as they are (to the cent), numbers only for charts. */
"use strict";

(function () {
  const STORE = "costguard.session";
  const $ = (id) => document.getElementById(id);
  const charts = new Map();
  let session = null;

  // ------------------------------------------------------------------ small helpers
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") node.className = v;
      else if (k === "text") node.textContent = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? "" : String(v));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  /** "12.345678" → "12.35" without binary floats: round half up on the decimal string. */
  function cents(text) {
    if (text === null || text === undefined) return "-";
    const s = String(text);
    const negative = s.startsWith("-");
    const [whole, frac = ""] = s.replace("-", "").split(".");
    const padded = (frac + "000").slice(0, 3);
    let value = BigInt(whole || "0") * 100n + BigInt(padded.slice(0, 2));
    if (Number(padded[2]) >= 5) value += 1n;
    const out = `${value / 100n}.${String(value % 100n).padStart(2, "0")}`;
    return (negative && value !== 0n ? "-" : "") + out;
  }
  const usd = (text) => `$${cents(text)}`;
  const pct = (ratio) => `${(Number(ratio) * 100).toFixed(1)} %`;
  const when = (iso) => (iso ? iso.replace("T", " ").replace(/:\d\d(\.\d+)?Z$/, "Z") : "-");
  const isoDay = (d) => d.toISOString().slice(0, 10);
  const plural = (n, word) => `${n} ${word}${n === 1 ? "" : "s"}`;

  class ApiError extends Error {
    constructor(status, body, headers) {
      super((body && (body.detail || body.title)) || `HTTP ${status}`);
      this.status = status;
      this.body = body || {};
      this.headers = headers;
    }
  }

  async function api(method, path, body) {
    const headers = { Accept: "application/json", Authorization: `Bearer ${session.key}` };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "omit",
      cache: "no-store",
    });
    const text = await response.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch (_) {
      data = { title: text.slice(0, 200) };
    }
    if (!response.ok) throw new ApiError(response.status, data, response.headers);
    return data;
  }

  function showProblem(error) {
    const box = $("problem");
    if (!error) {
      box.hidden = true;
      box.replaceChildren();
      return;
    }
    const body = error.body || {};
    box.replaceChildren(
      el("strong", { text: `${error.status || ""} ${body.title || "Request failed"}`.trim() }),
      el("span", { text: body.detail || error.message || "" })
    );
    box.hidden = false;
  }

  // ------------------------------------------------------------------ tables and charts
  function table(caption, headers, rows, numeric) {
    if (!rows.length) return el("p", { class: "empty", text: "Nothing in this window." });
    return el(
      "table",
      {},
      el("caption", { class: "sr-only", text: caption }),
      el("thead", {}, el("tr", {}, headers.map((h, i) => el("th", { scope: "col", class: numeric.includes(i) ? "num" : null, text: h })))),
      el("tbody", {}, rows.map((r) => el("tr", {}, r.map((c, i) => el("td", { class: numeric.includes(i) ? "num" : null }, c)))))
    );
  }

  function miniBar(value, max) {
    const width = max > 0 ? Math.max(1, Math.round((value / max) * 100)) : 0;
    const span = el("span");
    span.style.width = `${width}%`;
    return el("div", { class: "mini", "aria-hidden": "true" }, span);
  }

  function groupTable(caption, groups, label) {
    const max = Math.max(0, ...groups.map((g) => Number(g.cost_usd)));
    return table(
      caption,
      [label, "Spend", ""],
      groups.map((g) => [g.key, usd(g.cost_usd), miniBar(Number(g.cost_usd), max)]),
      [1]
    );
  }

  function dailyChart(id, days, label) {
    const holder = $(id);
    const old = charts.get(id);
    if (old) old.destroy();
    holder.replaceChildren();
    const xs = days.map((d) => Date.parse(`${d.day}T00:00:00Z`) / 1000);
    // a day without spend draws no bar (a zero-height bar would still draw its outline)
    const ys = days.map((d) => (Number(d.cost_usd) > 0 ? Number(d.cost_usd) : null));
    const total = days.reduce((sum, d) => sum + Number(d.cost_usd), 0);
    holder.setAttribute("aria-label", `${label}: ${days.length} days, ${usd(total.toFixed(6))} in all`);
    if (typeof uPlot === "undefined") {
      holder.append(el("p", { class: "empty", text: "Chart library not loaded." }));
      return;
    }
    const width = Math.max(260, holder.clientWidth || 600);
    const chart = new uPlot(
      {
        width,
        height: 220,
        tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), "Etc/UTC"),
        legend: { show: false },
        cursor: { drag: { x: false, y: false } },
        scales: { x: { time: true }, y: { range: (_, min, max) => [0, max > 0 ? max * 1.1 : 1] } },
        axes: [{}, { values: (_, ticks) => ticks.map((t) => `$${t}`), size: 60 }],
        series: [
          {},
          {
            label: "USD",
            stroke: "#1f5fbf",
            fill: "rgba(31,95,191,0.35)",
            paths: uPlot.paths.bars({ size: [0.7, 40] }),
            points: { show: false },
          },
        ],
      },
      [xs, ys],
      holder
    );
    charts.set(id, chart);
  }

  window.addEventListener("resize", () => {
    for (const [id, chart] of charts) {
      const width = Math.max(260, $(id).clientWidth || 600);
      chart.setSize({ width, height: 220 });
    }
  });

  function alertList(id, alerts) {
    const list = $(id);
    list.replaceChildren();
    if (!alerts.length) {
      list.append(el("li", { class: "empty", text: "No alerts." }));
      return;
    }
    for (const a of alerts) {
      list.append(
        el(
          "li",
          { class: a.severity, "data-alert-type": a.alert_type },
          el("div", {}, el("strong", { text: `${a.severity}: ` }), a.title),
          el("div", { class: "meta", text: `${when(a.created_at)} · ${a.alert_type}${a.tenant_id ? " · " + a.tenant_id : ""}` }),
          el("div", { text: a.message })
        )
      );
    }
  }

  function cards(id, items) {
    $(id).replaceChildren(
      ...items.map(([label, value]) =>
        el("div", { class: "card" }, el("div", { class: "label", text: label }), el("div", { class: "value", text: value }))
      )
    );
  }

  // ------------------------------------------------------------------ views
  function show(view) {
    for (const id of ["sign-in", "platform", "tenant"]) $(id).hidden = id !== view;
    $("nav").hidden = view === "sign-in";
    $("platform-go").hidden = !session || session.role !== "admin";
    $("tenant-open").hidden = $("tenant-go").hidden = !session || session.role !== "admin";
    document.querySelector('label[for="tenant-open"]').hidden = $("tenant-open").hidden;
  }

  async function loadPlatform() {
    show("platform");
    const days = $("platform-days").value;
    const o = await api("GET", `/v1/platform/overview?days=${days}`);
    cards("platform-cards", [
      [`Spend, last ${days} days`, usd(o.total_usd)],
      ["Tenants with spend", String(o.tenants.length) + (o.truncated ? "+" : "")],
      ["Quotas ≥ 80 %", String(o.quotas_near_limit.length)],
      ["Recent alerts", String(o.alerts.length)],
    ]);
    dailyChart("platform-daily", o.daily, "Platform spend by day");
    $("platform-models").replaceChildren(groupTable("Spend by model", o.by_model, "Model / tier"));
    const max = Math.max(0, ...o.tenants.map((t) => Number(t.spent_usd)));
    $("platform-tenants").replaceChildren(
      table(
        "Top tenants",
        ["Tenant", "Spend", "Today", "Calls", ""],
        o.tenants.slice(0, 15).map((t) => [
          el("button", { class: "link", type: "button", onclick: () => openTenant(t.tenant_id), text: t.tenant_id }),
          usd(t.spent_usd),
          usd(t.today_usd),
          String(t.calls),
          miniBar(Number(t.spent_usd), max),
        ]),
        [1, 2, 3]
      )
    );
    $("platform-quotas").replaceChildren(
      table(
        "Quotas near their limit",
        ["Tenant", "Quota", "Used", "Spent", "Limit", "Remaining", "Resets"],
        o.quotas_near_limit.map((q) => [
          el("button", { class: "link", type: "button", onclick: () => openTenant(q.tenant_id), text: q.tenant_id }),
          q.quota_id,
          pct(q.utilization),
          usd(q.spent_usd),
          usd(q.limit_usd),
          usd(q.remaining_usd),
          when(q.resets_at),
        ]),
        [2, 3, 4, 5]
      )
    );
    alertList("platform-alerts", o.alerts);
  }

  function quotaItem(q, forecast) {
    const limit = Number(q.limit_usd);
    const spent = limit > 0 ? Math.min(100, (Number(q.spent_usd) / limit) * 100) : 100;
    const held = limit > 0 ? Math.min(100 - spent, (Number(q.reserved_usd) / limit) * 100) : 0;
    const used = Number(q.utilization);
    const full = used >= 1 || Number(q.remaining_usd) <= 0;
    const bar = el("div", {
      class: `bar${full ? " full" : used >= 0.8 ? " warn" : ""}`,
      role: "progressbar",
      "aria-label": `${q.quota_id} used`,
      "aria-valuemin": "0",
      "aria-valuemax": "100",
      "aria-valuenow": (used * 100).toFixed(1),
      "aria-valuetext": `${pct(used)} of ${usd(q.limit_usd)}`,
    });
    const s = el("span", { class: "spent" });
    s.style.width = `${spent}%`;
    const h = el("span", { class: "held" });
    h.style.left = `${spent}%`;
    h.style.width = `${held}%`;
    bar.append(s, h);
    let projection = el("div", { class: "figures", text: "Forecast: not computed yet (the forecast schedule runs every 6 hours)." });
    if (forecast) {
      projection = el(
        "div",
        { class: "figures" },
        `Forecast to ${when(q.resets_at)}: ${usd(forecast.projected_usd)} (${forecast.projected_utilization ? pct(forecast.projected_utilization) : "-"}), risk `,
        el("span", { class: `risk risk-${forecast.risk}`, text: forecast.risk }),
        forecast.breach_on ? `, limit reached on ${forecast.breach_on}` : ""
      );
    }
    return el(
      "li",
      { "data-quota-id": q.quota_id },
      el(
        "div",
        { class: "quota-head" },
        el("span", { class: "id", text: q.quota_id }),
        el("span", { class: "used", text: `${pct(q.utilization)} used · ${q.mode}` })
      ),
      bar,
      el(
        "div",
        { class: "figures" },
        el("span", { class: "spent-figure", text: `spent ${usd(q.spent_usd)}` }),
        ` · held ${usd(q.reserved_usd)} · limit ${usd(q.limit_usd)} · remaining `,
        el("span", { class: "remaining-figure", text: usd(q.remaining_usd) }),
        ` · resets ${when(q.resets_at)}`
      ),
      full && q.mode === "hard" ? el("div", { class: "status-full", text: "At its limit: new reserves are refused (429) until it resets." }) : null,
      projection
    );
  }

  function recommendations(advice) {
    const box = $("tenant-recommendations");
    if (!advice.recommendations.length) {
      box.replaceChildren(el("p", { class: "empty", text: `Nothing to change: ${plural(advice.records_examined, "record")} over ${plural(advice.days_observed, "day")} examined.` }));
      return;
    }
    box.replaceChildren(
      el("p", {}, `${usd(advice.monthly_savings_usd)} a month to save, from ${plural(advice.records_examined, "record")} over ${plural(advice.days_observed, "day")}.`),
      ...advice.recommendations.map((r) =>
        el(
          "div",
          { class: "rec", "data-kind": r.kind },
          el("div", {}, el("strong", { text: r.title })),
          el("div", {}, el("span", { class: "saving", text: `${usd(r.monthly_savings_usd)}/month` }), ` · confidence ${r.confidence}`),
          el("div", { text: r.action }),
          el(
            "details",
            {},
            el("summary", { text: "Evidence" }),
            el("dl", {}, Object.entries(r.evidence).flatMap(([k, v]) => [el("dt", { text: k.replaceAll("_", " ") }), el("dd", { text: v })]))
          )
        )
      )
    );
  }

  async function loadTenant(tenant) {
    show("tenant");
    $("tenant-title").textContent = `Tenant ${tenant}`;
    const t = encodeURIComponent(tenant);
    const today = new Date();
    const first = new Date(today.getTime() - 29 * 86400000);
    const range = `from=${isoDay(first)}&to=${isoDay(today)}`;
    const [quotas, forecast, byDay, byModel, byUser, alerts, advice] = await Promise.all([
      api("GET", `/v1/tenants/${t}/quotas`),
      api("GET", `/v1/tenants/${t}/forecast`),
      api("GET", `/v1/tenants/${t}/usage?${range}&group_by=day`),
      api("GET", `/v1/tenants/${t}/usage?${range}&group_by=model`),
      api("GET", `/v1/tenants/${t}/usage?${range}&group_by=user`),
      api("GET", `/v1/tenants/${t}/alerts?limit=20`),
      api("GET", `/v1/tenants/${t}/recommendations`),
    ]);
    const forecasts = new Map(forecast.forecasts.map((f) => [f.quota_id, f]));
    cards("tenant-cards", [
      ["Spend, last 30 days", usd(byDay.total_usd)],
      ["Calls", String(byDay.calls)],
      ["Quotas", String(quotas.quotas.length)],
      ["To save a month", usd(advice.monthly_savings_usd)],
    ]);
    const list = $("tenant-quotas");
    list.replaceChildren(...quotas.quotas.map((q) => quotaItem(q, forecasts.get(q.quota_id))));
    if (!quotas.quotas.length) list.append(el("li", { class: "empty", text: "No quotas." }));
    const perDay = new Map(byDay.groups.map((g) => [g.key, g.cost_usd]));
    const days = [];
    for (let n = 0; n < 30; n++) {
      const day = isoDay(new Date(first.getTime() + n * 86400000));
      days.push({ day, cost_usd: perDay.get(day) || "0" });
    }
    dailyChart("tenant-daily", days, `Spend of ${tenant} by day`);
    $("tenant-models").replaceChildren(groupTable("Spend by model", byModel.groups, "Model"));
    $("tenant-users").replaceChildren(groupTable("Spend by user", byUser.groups, "User"));
    alertList("tenant-alerts", alerts.alerts);
    recommendations(advice);
  }

  async function trySpend(event) {
    event.preventDefault();
    const tenant = session.view;
    const body = { resource: $("try-resource").value, estimated_cost_usd: $("try-amount").value.trim() };
    const user = $("try-user").value.trim();
    if (user) body.user_id = user;
    const out = $("try-result");
    try {
      const hold = await api("POST", `/v1/tenants/${encodeURIComponent(tenant)}/reservations`, body);
      await api("DELETE", `/v1/tenants/${encodeURIComponent(tenant)}/reservations/${encodeURIComponent(hold.reservation_id)}`);
      out.replaceChildren(el("div", { class: "outcome", "data-status": "201" }, el("strong", { text: "201 Allowed" }), ` — ${usd(hold.reserved_usd)} was held and released.`));
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      const p = error.body;
      const retry = error.headers && error.headers.get("Retry-After");
      const detail =
        error.status === 429
          ? [
              `quota `, el("code", { text: p.quota_id }), `: limit ${usd(p.limit_usd)}, spent ${usd(p.spent_usd)}, held ${usd(p.reserved_usd)}, remaining ${usd(p.remaining_usd)}; `,
              `requested ${usd(p.requested_usd)}. Retry after ${retry || p.retry_after_seconds} s.`,
            ]
          : [p.detail || error.message];
      out.replaceChildren(
        el("div", { class: "outcome refused", role: "alert", "data-status": String(error.status) },
          el("strong", { text: `${error.status} ${p.title || ""}`.trim() }), " — ", ...detail)
      );
    }
    if (!$("tenant").hidden) await refresh();
  }

  // ------------------------------------------------------------------ session
  async function signIn(event) {
    event.preventDefault();
    showProblem(null);
    const key = $("api-key").value.trim();
    const tenant = $("tenant-id").value.trim();
    session = { key, role: null, tenant: null, view: null };
    try {
      await api("GET", "/v1/platform/quotas");
      session.role = "admin";
      session.view = tenant || null;
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      if (error.status !== 403) {
        session = null;
        showProblem(error.status === 401 ? new ApiError(401, { title: "Unauthorized", detail: "That API key is not valid." }) : error);
        return;
      }
      if (!tenant) {
        session = null;
        showProblem(new ApiError(403, { title: "Tenant id needed", detail: "This is a tenant key: enter the tenant it belongs to." }));
        return;
      }
      try {
        await api("GET", `/v1/tenants/${encodeURIComponent(tenant)}/quotas`);
      } catch (inner) {
        session = null;
        showProblem(inner);
        return;
      }
      session.role = "tenant";
      session.tenant = session.view = tenant;
    }
    sessionStorage.setItem(STORE, JSON.stringify(session));
    $("api-key").value = "";
    await refresh();
    $("main").focus();
  }

  function signOut() {
    sessionStorage.removeItem(STORE);
    session = null;
    for (const chart of charts.values()) chart.destroy();
    charts.clear();
    $("who").textContent = "";
    showProblem(null);
    show("sign-in");
    $("api-key").focus();
  }

  function openTenant(tenant) {
    if (!tenant) return;
    session.view = tenant;
    sessionStorage.setItem(STORE, JSON.stringify(session));
    refresh();
  }

  async function refresh() {
    // data-state says when the views are filled in (tests and screen readers wait for it)
    document.body.dataset.state = "loading";
    document.body.setAttribute("aria-busy", "true");
    try {
      await load();
    } finally {
      document.body.dataset.state = "ready";
      document.body.removeAttribute("aria-busy");
    }
  }

  async function load() {
    showProblem(null);
    $("who").textContent = session.role === "admin" ? "Signed in as the operator (admin key)" : `Signed in as tenant ${session.tenant}`;
    try {
      if (session.view) await loadTenant(session.view);
      else await loadPlatform();
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) {
        signOut();
        showProblem(new ApiError(401, { title: "Signed out", detail: "The API key is no longer valid." }));
        return;
      }
      showProblem(error);
    }
  }

  function start() {
    $("sign-in-form").addEventListener("submit", (e) => signIn(e).catch(showProblem));
    $("sign-out").addEventListener("click", signOut);
    $("refresh").addEventListener("click", () => refresh());
    $("platform-go").addEventListener("click", () => {
      session.view = null;
      sessionStorage.setItem(STORE, JSON.stringify(session));
      refresh();
    });
    $("tenant-go").addEventListener("click", () => openTenant($("tenant-open").value.trim()));
    $("tenant-open").addEventListener("keydown", (e) => {
      if (e.key === "Enter") openTenant($("tenant-open").value.trim());
    });
    $("platform-days").addEventListener("change", () => refresh());
    $("try-form").addEventListener("submit", (e) => trySpend(e).catch(showProblem));
    try {
      session = JSON.parse(sessionStorage.getItem(STORE) || "null");
    } catch (_) {
      session = null;
    }
    if (session && session.key) refresh();
    else show("sign-in");
  }

  start();
})();
