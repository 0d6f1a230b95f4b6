// The analysts' page: order a report from the catalog and follow its tasks.
// Plain JS, no build step, no CDN. Talks only to this API: GET /estados, GET /tipos-relatorio,
// POST /gerar-relatorio, GET /relatorios (polled), DELETE /relatorios/{id}, GET /health.
// Task states are never spelled here: GET /estados serves them from the protocol (Status).
// Every call but /health sends the API key (Authorization: Bearer), kept in sessionStorage: it
// lives as long as the tab, comes from the login form or from make run's link (#chave=…).
"use strict";

(function () {
  const POLL_ACTIVE_MS = 1000; // while a task is queued or running
  const POLL_IDLE_MS = 4000;
  const HEALTH_MS = 5000;
  const PAGE = 20;
  const MAX_PAGE = 100; // the API's maximum `limite`
  // Filled by loadStates() from GET /estados before anything is drawn.
  const S = {}; // protocol name -> status value, e.g. S.DONE
  const STATUS_LABEL = {}; // status value -> label
  const FINAL = new Set(); // status values of the final states

  const KEY_STORAGE = "relatorios.chave";
  const $ = (id) => document.getElementById(id);
  const state = {
    key: null, // the API key of this tab, or null: the login form is shown
    catalog: new Map(), // tipo -> report info
    items: new Map(), // task_id -> {li, parts, status}
    lastRows: new Map(), // "tipo|params" -> rows of the newest finished run, for estimates
    limit: PAGE,
    clockOffset: 0, // server time minus local time, from the Date header
    timer: null,
    seq: 0,
    justCreated: null,
  };

  // ---------- small helpers ----------

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children) if (child) node.append(child);
    return node;
  }

  async function send(method, path, body, accept) {
    const init = { method, headers: { Accept: accept } };
    if (state.key) init.headers.Authorization = `Bearer ${state.key}`;
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const response = await fetch(path, init);
    if (response.status === 401 && state.key) {
      logOut("A chave foi recusada (inválida ou revogada). Entre de novo.");
    }
    return response;
  }

  async function api(method, path, body) {
    const response = await send(method, path, body, "application/json");
    const date = response.headers.get("Date");
    if (date) state.clockOffset = Date.parse(date) - Date.now();
    let data = null;
    try {
      data = await response.json();
    } catch (_) {
      data = null;
    }
    return { status: response.status, ok: response.ok, data };
  }

  function detailText(data, fallback) {
    if (data && typeof data.mensagem === "string") return data.mensagem;
    if (data && typeof data.detail === "string") return data.detail;
    return fallback;
  }

  const numberFmt = new Intl.NumberFormat("pt-BR");
  function formatBytes(n) {
    if (n < 1024) return `${numberFmt.format(n)} B`;
    const units = ["KB", "MB", "GB", "TB"];
    let value = n / 1024;
    let unit = 0;
    while (value >= 1024 && unit < units.length - 1) {
      value /= 1024;
      unit += 1;
    }
    return `${value.toLocaleString("pt-BR", { maximumFractionDigits: 1 })} ${units[unit]}`;
  }

  function formatDuration(seconds) {
    if (seconds < 10) return `${seconds.toLocaleString("pt-BR", { maximumFractionDigits: 1 })} s`;
    const s = Math.round(seconds);
    if (s < 60) return `${s} s`;
    const m = Math.floor(s / 60);
    if (m < 60) return `${m} min ${String(s % 60).padStart(2, "0")} s`;
    return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, "0")} min`;
  }

  function secondsBetween(start, end) {
    const a = Date.parse(start || "");
    const b = end === "agora" ? Date.now() + state.clockOffset : Date.parse(end || "");
    if (Number.isNaN(a) || Number.isNaN(b)) return null;
    return Math.max(0, (b - a) / 1000);
  }

  function formatWhen(iso) {
    const date = new Date(iso || "");
    if (Number.isNaN(date.getTime())) return "";
    const today = new Date().toDateString() === date.toDateString();
    const time = date.toLocaleTimeString("pt-BR");
    return today ? time : `${date.toLocaleDateString("pt-BR")} ${time}`;
  }

  function paramsText(params) {
    const entries = Object.entries(params || {});
    if (entries.length === 0) return "sem parâmetros";
    return entries.map(([k, v]) => `${k}: ${v === null ? "—" : v}`).join(" · ");
  }

  function runKey(task) {
    const params = task.parametros || {};
    const sorted = Object.keys(params).sort().map((k) => [k, params[k]]);
    return `${task.tipo_relatorio}|${JSON.stringify(sorted)}`;
  }

  // ---------- the task states ----------

  async function loadStates() {
    let result;
    try {
      result = await api("GET", "/estados");
    } catch (_) {
      result = { ok: false };
    }
    if (!result.ok || !Array.isArray(result.data)) return false;
    const filter = $("filtro-status");
    for (const item of result.data) {
      S[item.nome] = item.status;
      STATUS_LABEL[item.status] = item.rotulo;
      if (item.final) FINAL.add(item.status);
      filter.append(el("option", { value: item.status, text: item.rotulo }));
    }
    return true;
  }

  async function start() {
    while (!(await loadStates())) {
      if (!state.key) return; // the key was refused: the login form is shown
      showConnection("Não foi possível falar com a API; nova tentativa em 3 s…");
      await new Promise((resolve) => setTimeout(resolve, 3000));
    }
    showConnection(null);
    loadCatalog();
  }

  // ---------- logging in and out ----------

  function showApp(loggedIn) {
    $("app").hidden = !loggedIn;
    $("sair").hidden = !loggedIn;
    $("entrar").hidden = loggedIn;
  }

  function logIn(key) {
    state.key = key;
    sessionStorage.setItem(KEY_STORAGE, key);
    showApp(true);
    start();
  }

  function logOut(message) {
    state.key = null;
    sessionStorage.removeItem(KEY_STORAGE);
    clearTimeout(state.timer);
    state.seq += 1; // an answer still on its way is not drawn
    state.items.clear();
    state.catalog.clear();
    $("lista").replaceChildren();
    const filter = $("filtro-status");
    while (filter.options.length > 1) filter.remove(1);
    showApp(false);
    const error = $("erro-chave");
    error.textContent = message || "";
    error.hidden = !message;
    $("chave").value = "";
    $("chave").focus();
  }

  async function submitKey(event) {
    event.preventDefault();
    const key = $("chave").value.trim();
    const error = $("erro-chave");
    if (!key) {
      error.textContent = "Informe a chave de API.";
      error.hidden = false;
      return;
    }
    let response;
    try {
      response = await fetch("/estados", { headers: { Authorization: `Bearer ${key}` } });
    } catch (_) {
      error.textContent = "Não foi possível falar com a API.";
      error.hidden = false;
      return;
    }
    if (response.status === 401) {
      error.textContent = "Chave inválida ou revogada.";
      error.hidden = false;
      return;
    }
    error.hidden = true;
    logIn(key);
  }

  // make run prints a link with the key in the fragment (never sent to the server): keep it in
  // this tab and take it out of the address bar and the history.
  function keyFromLink() {
    const match = /^#chave=([A-Za-z0-9_-]+)$/.exec(location.hash);
    if (!match) return null;
    history.replaceState(null, "", location.pathname + location.search);
    return match[1];
  }

  // ---------- the order form ----------

  async function loadCatalog() {
    const box = $("tipos");
    let result;
    try {
      result = await api("GET", "/tipos-relatorio");
    } catch (_) {
      result = { ok: false };
    }
    if (!result.ok || !Array.isArray(result.data)) {
      box.querySelector(".carregando").textContent =
        "Não foi possível carregar o catálogo; nova tentativa em 3 s…";
      setTimeout(loadCatalog, 3000);
      return;
    }
    box.replaceChildren(el("legend", { text: "Tipo de relatório" }));
    for (const report of result.data) {
      state.catalog.set(report.tipo, report);
      const id = `tipo-${report.tipo}`;
      const input = el("input", {
        type: "radio",
        name: "tipo_relatorio",
        id,
        value: report.tipo,
        "aria-describedby": `${id}-desc`,
      });
      input.addEventListener("change", () => renderFields(report));
      // The label is the title alone (the radio's name); the description is its description.
      box.append(
        el(
          "div",
          { class: "tipo" },
          input,
          el("label", { for: id, class: "tipo-titulo", text: report.titulo }),
          el("p", { class: "tipo-desc", id: `${id}-desc`, text: report.descricao }),
        ),
      );
    }
    const first = box.querySelector("input[type=radio]");
    if (first) {
      first.checked = true;
      renderFields(state.catalog.get(first.value));
    }
    if (result.data.length) renderFormats(result.data[0].formatos || []);
    refreshTasks();
  }

  // The file formats (the same for every report): a radio each, csv first; gzip only where
  // the format takes it.
  function renderFormats(formats) {
    const box = $("formatos");
    box.replaceChildren(el("legend", { text: "Formato do arquivo" }));
    for (const [i, f] of formats.entries()) {
      const id = `formato-${f.formato}`;
      const input = el("input", { type: "radio", name: "formato", id, value: f.formato });
      input.checked = i === 0;
      input.dataset.compressoes = f.compressoes.join(" ");
      input.addEventListener("change", updateGzip);
      box.append(el("div", { class: "formato" }, input, el("label", { for: id, text: f.rotulo })));
    }
    updateGzip();
  }

  function updateGzip() {
    const picked = document.querySelector("input[name=formato]:checked");
    const allowed = !picked || picked.dataset.compressoes.split(" ").includes("gzip");
    $("gzip").disabled = !allowed;
    if (!allowed) $("gzip").checked = false;
    $("gzip-dica").hidden = allowed;
  }

  function renderFields(report) {
    clearErrors();
    const box = $("campos");
    box.replaceChildren();
    if (report.parametros.length === 0) {
      box.append(el("p", { class: "dica", text: "Este relatório não tem parâmetros." }));
      return;
    }
    for (const param of report.parametros) box.append(fieldFor(param));
  }

  function fieldFor(param) {
    const id = `p-${param.nome}`;
    const errorId = `erro-${param.nome}`;
    const hintId = `dica-${param.nome}`;
    const hint = rangeHint(param);
    const common = {
      id,
      name: param.nome,
      required: param.obrigatorio,
      "aria-describedby": hint ? `${hintId} ${errorId}` : errorId,
      "data-tipo": param.tipo,
    };
    let input;
    if (param.tipo === "department" && Array.isArray(param.opcoes)) {
      input = el("select", common, el("option", { value: "", text: "Escolha um departamento…" }));
      for (const name of param.opcoes) input.append(el("option", { value: name, text: name }));
    } else if (param.tipo === "date") {
      input = el("input", { ...common, type: "date" });
    } else if (param.tipo === "integer") {
      input = el("input", {
        ...common,
        type: "number",
        inputmode: "numeric",
        step: 1,
        min: param.minimo,
        max: param.maximo,
      });
    } else {
      input = el("input", { ...common, type: "text", maxlength: 1024, autocomplete: "off" });
    }
    if (param.padrao !== null && param.padrao !== undefined) input.value = String(param.padrao);
    const label = el(
      "label",
      { for: id },
      param.rotulo,
      el("span", { class: "marca", text: param.obrigatorio ? " (obrigatório)" : " (opcional)" }),
    );
    return el(
      "div",
      { class: "campo" },
      label,
      input,
      hint ? el("p", { class: "dica", id: hintId, text: hint }) : null,
      el("p", { class: "erro-campo", id: errorId, hidden: true }),
    );
  }

  function rangeHint(param) {
    const parts = [];
    if (param.minimo !== null && param.minimo !== undefined) parts.push(`mínimo ${param.minimo}`);
    if (param.maximo !== null && param.maximo !== undefined) parts.push(`máximo ${param.maximo}`);
    if (param.padrao !== null && param.padrao !== undefined) parts.push(`padrão ${param.padrao}`);
    return parts.join(" · ");
  }

  function collect() {
    const picked = document.querySelector("input[name=tipo_relatorio]:checked");
    const parametros = {};
    for (const input of $("campos").querySelectorAll("input, select")) {
      const raw = input.value.trim();
      if (raw === "") continue; // absent: the API applies the default or reports it missing
      const isInt = input.dataset.tipo === "integer" && /^-?\d+$/.test(raw);
      parametros[input.name] = isInt ? Number(raw) : raw;
    }
    const formato = document.querySelector("input[name=formato]:checked");
    const body = { tipo_relatorio: picked ? picked.value : undefined, parametros };
    if (formato) body.formato = formato.value;
    if ($("gzip").checked) body.compressao = "gzip";
    return body;
  }

  function clearErrors() {
    for (const node of document.querySelectorAll(".erro-campo")) {
      node.hidden = true;
      node.textContent = "";
    }
    for (const node of document.querySelectorAll("[aria-invalid]")) {
      node.removeAttribute("aria-invalid");
    }
    $("erro-geral").hidden = true;
    $("erro-geral").textContent = "";
  }

  // Put each 422 error next to the field it names (loc: body, TYPE, parametros, NAME).
  function showValidation(details) {
    const general = [];
    let firstInvalid = null;
    for (const item of details) {
      const loc = (item.loc || []).map(String);
      const at = loc.indexOf("parametros");
      let name = at >= 0 && loc.length > at + 1 ? loc[at + 1] : null;
      if (!name && (loc.includes("tipo_relatorio") || String(item.type).startsWith("union_tag"))) {
        name = "tipo_relatorio";
      }
      if (!name && (loc.includes("formato") || loc.includes("compressao"))) name = "formato";
      const message = String(item.msg || "").replace(/^[\w.]+: /, "");
      const slot = name ? $(`erro-${name}`) : null;
      if (!slot) {
        general.push(item.msg);
        continue;
      }
      slot.textContent = slot.textContent ? `${slot.textContent}; ${message}` : message;
      slot.hidden = false;
      const input =
        name === "tipo_relatorio" ? $("tipos") : name === "formato" ? $("formatos") : $(`p-${name}`);
      if (input) {
        input.setAttribute("aria-invalid", "true");
        firstInvalid = firstInvalid || input;
      }
    }
    const summary = $("erro-geral");
    summary.textContent = general.length
      ? `Pedido inválido: ${general.join("; ")}`
      : "Corrija os campos indicados.";
    summary.hidden = false;
    if (firstInvalid) {
      const target = firstInvalid.matches("fieldset")
        ? firstInvalid.querySelector("input")
        : firstInvalid;
      if (target) target.focus();
    }
  }

  async function submit(event) {
    event.preventDefault();
    clearErrors();
    $("confirmacao").textContent = "";
    const button = $("enviar");
    button.disabled = true;
    try {
      const result = await api("POST", "/gerar-relatorio", collect());
      if (result.status === 202) {
        const report = state.catalog.get(result.data.tipo_relatorio);
        const title = report ? report.titulo : result.data.tipo_relatorio;
        $("confirmacao").textContent =
          `Pedido aceito: ${title} (tarefa ${result.data.task_id.slice(0, 8)}). ` +
          "Acompanhe na lista de tarefas.";
        state.justCreated = result.data.task_id;
        refreshTasks();
      } else if (result.status === 422 && result.data && Array.isArray(result.data.detail)) {
        showValidation(result.data.detail);
      } else {
        showGeneral(detailText(result.data, `A API respondeu ${result.status}.`));
      }
    } catch (_) {
      showGeneral("Não foi possível falar com a API. Verifique a conexão e tente de novo.");
    } finally {
      button.disabled = false;
    }
  }

  function showGeneral(text) {
    const box = $("erro-geral");
    box.textContent = text;
    box.hidden = false;
  }

  // ---------- the task list ----------

  function scheduleRefresh(active) {
    clearTimeout(state.timer);
    if (document.hidden) return; // resumes on visibilitychange
    state.timer = setTimeout(refreshTasks, active ? POLL_ACTIVE_MS : POLL_IDLE_MS);
  }

  async function refreshTasks() {
    if (!state.key) return;
    // Calls may overlap (timer, submit, cancel): only the newest answer is drawn.
    const seq = ++state.seq;
    const filter = $("filtro-status").value;
    const query = new URLSearchParams({ limite: String(state.limit) });
    if (filter) query.set("status", filter);
    let active = false;
    try {
      const result = await api("GET", `/relatorios?${query}`);
      if (seq !== state.seq) return;
      if (!result.ok) {
        const why =
          result.status === 422
            ? "A API não aceitou este filtro."
            : detailText(result.data, `A API respondeu ${result.status}.`);
        showConnection(`${why} Nova tentativa em instantes…`);
      } else {
        showConnection(null);
        active = renderTasks(result.data);
      }
    } catch (_) {
      if (seq !== state.seq) return;
      showConnection("Sem conexão com a API; tentando de novo…");
    }
    scheduleRefresh(active);
  }

  function showConnection(text) {
    const box = $("conexao");
    box.hidden = !text;
    box.textContent = text || "";
  }

  function renderTasks(page) {
    const list = $("lista");
    const tasks = page.tarefas;
    // Oldest first, so the newest finished run of each report+parameters wins.
    for (const task of [...tasks].reverse()) {
      if (task.status === S.DONE) state.lastRows.set(runKey(task), task.linhas);
    }
    const seen = new Set();
    tasks.forEach((task, index) => {
      seen.add(task.task_id);
      let item = state.items.get(task.task_id);
      if (!item) {
        item = createItem(task);
        state.items.set(task.task_id, item);
      }
      updateItem(item, task);
      // Move only what is out of place, so a focused button keeps its focus.
      if (list.children[index] !== item.li) list.insertBefore(item.li, list.children[index] || null);
    });
    for (const [id, item] of state.items) {
      if (!seen.has(id)) {
        item.li.remove();
        state.items.delete(id);
      }
    }
    const filter = $("filtro-status");
    const label = filter.value ? ` (${filter.selectedOptions[0].textContent})` : "";
    $("resumo").textContent = page.total
      ? `Mostrando ${tasks.length} de ${numberFmt.format(page.total)} tarefas${label}.`
      : `Nenhuma tarefa${label} ainda. Peça um relatório ao lado.`;
    $("mais").hidden = !(page.total > tasks.length && state.limit < MAX_PAGE);
    return tasks.some((t) => !FINAL.has(t.status));
  }

  function createItem(task) {
    const report = state.catalog.get(task.tipo_relatorio);
    const title = report ? report.titulo : task.tipo_relatorio;
    const short = task.task_id.slice(0, 8);
    const parts = {
      badge: el("span", { class: "selo" }),
      progress: el("progress", { max: 100, "aria-label": `Progresso de ${title} (${short})` }),
      counts: el("span", { class: "contagem" }),
      error: el("p", { class: "erro-tarefa", hidden: true }),
      note: el("p", { class: "nota", role: "status" }),
      actions: el("div", { class: "acoes" }),
    };
    const li = el(
      "li",
      { class: "tarefa", "data-task-id": task.task_id, "data-status": task.status },
      el(
        "div",
        { class: "tarefa-topo" },
        el("h3", { class: "tarefa-titulo", text: title }),
        parts.badge,
      ),
      el("p", { class: "tarefa-params", text: paramsText(task.parametros) }),
      el(
        "p",
        { class: "tarefa-meta" },
        el("span", {
          text: `${task.tipo_relatorio} · ${short} · ${fileKind(task)} · pedido às ${formatWhen(task.criado_em)}`,
        }),
      ),
      el("div", { class: "progresso" }, parts.progress, parts.counts),
      parts.error,
      parts.actions,
      parts.note,
    );
    if (task.task_id === state.justCreated) li.classList.add("nova");
    return { li, parts, title, short, status: null };
  }

  function updateItem(item, task) {
    const { parts } = item;
    const previous = item.status;
    item.li.dataset.status = task.status;
    parts.badge.className = `selo selo-${task.status}`;
    parts.badge.textContent = STATUS_LABEL[task.status] || task.status;
    parts.counts.textContent = countsText(task);
    updateProgress(parts.progress, task);
    // The last error also shows while a retry is pending, so the analyst knows why it waits.
    parts.error.hidden = !task.erro;
    parts.error.textContent = task.erro ? `Erro: ${task.erro}` : "";
    if (previous !== task.status) {
      renderActions(item, task);
      if (previous && FINAL.has(task.status)) announce(item, task);
    }
    item.status = task.status;
  }

  // How the file is written, from its name: CSV, CSV (gzip), XLSX.
  function fileKind(task) {
    const name = task.arquivo || "";
    const label = { csv: "CSV", csv_excel: "CSV para Excel", xlsx: "XLSX" }[task.formato || "csv"];
    return name.endsWith(".gz") ? `${label} (gzip)` : label || name.split(".").pop();
  }

  // The download's word: the file's own kind (CSV, CSV.GZ, XLSX).
  function downloadKind(task) {
    const name = task.arquivo || "";
    return name.endsWith(".csv.gz") ? "CSV.GZ" : name.endsWith(".xlsx") ? "XLSX" : "CSV";
  }

  function countsText(task) {
    const rows = `${numberFmt.format(task.linhas)} linhas`;
    if (task.status === S.QUEUED && task.tentativas > 0) {
      // A temporary failure: the task waits for its next attempt.
      const when = task.proxima_tentativa_em ? ` às ${formatWhen(task.proxima_tentativa_em)}` : "";
      return `nova tentativa${when} (${task.tentativas} já feitas)`;
    }
    if (task.status === S.QUEUED) {
      const waited = secondsBetween(task.criado_em, "agora");
      return waited === null ? "aguardando um worker" : `aguardando um worker há ${formatDuration(waited)}`;
    }
    if (task.status === S.EXPIRED) return "arquivo apagado pela retenção";
    if (task.status === S.RUNNING) {
      const elapsed = secondsBetween(task.iniciado_em, "agora");
      const estimate = estimatePercent(task);
      const pieces = [rows, elapsed === null ? null : `${formatDuration(elapsed)} decorridos`];
      if (estimate !== null) pieces.push(`≈${estimate}% (pela última execução igual)`);
      return pieces.filter(Boolean).join(" · ");
    }
    const took = secondsBetween(task.iniciado_em || task.criado_em, task.concluido_em);
    const duration = took === null ? null : `em ${formatDuration(took)}`;
    if (task.status !== S.DONE) {
      // A failed or cancelled task: its partial file was removed, so only the rows matter.
      // Counted from the order, retries included: what the analyst waited.
      const waited = secondsBetween(task.criado_em, task.concluido_em);
      const after = waited === null ? null : `após ${formatDuration(waited)}`;
      return [task.linhas ? `${rows} escritas` : null, after].filter(Boolean).join(" · ");
    }
    return [rows, formatBytes(task.bytes), duration].filter(Boolean).join(" · ");
  }

  function estimatePercent(task) {
    const total = state.lastRows.get(runKey(task));
    if (!total) return null;
    return Math.min(99, Math.floor((100 * task.linhas) / total));
  }

  function updateProgress(bar, task) {
    bar.hidden = task.status === S.QUEUED;
    if (task.status === S.RUNNING) {
      const estimate = estimatePercent(task);
      // No value attribute = an indeterminate bar: the total is unknown until the query ends.
      if (estimate === null) bar.removeAttribute("value");
      else bar.value = estimate;
    } else {
      bar.value = task.status === S.DONE ? 100 : 0;
      bar.hidden = task.status !== S.DONE;
    }
  }

  function renderActions(item, task) {
    const box = item.parts.actions;
    box.replaceChildren();
    if (task.status === S.DONE && task.download_url) {
      const button = el("button", {
        type: "button",
        class: "botao primario",
        text: `Baixar ${downloadKind(task)}`,
        "aria-label": `Baixar ${downloadKind(task)}: ${item.title} (${item.short})`,
      });
      button.addEventListener("click", () => download(item, task, button));
      box.append(button);
    }
    if (!FINAL.has(task.status)) {
      const button = el("button", {
        type: "button",
        class: "botao perigo",
        text: "Cancelar",
        "aria-label": `Cancelar: ${item.title} (${item.short})`,
      });
      button.addEventListener("click", () => cancel(item, task.task_id, button));
      box.append(button);
    }
  }

  // The download needs the key, which a plain link cannot send: fetch the file, then save it.
  async function download(item, task, button) {
    button.disabled = true;
    item.parts.note.textContent = "Baixando…";
    try {
      const response = await send("GET", new URL(task.download_url).pathname, undefined, "*/*");
      if (!response.ok) {
        let data = null;
        try {
          data = await response.json();
        } catch (_) {
          data = null;
        }
        item.parts.note.textContent = detailText(data, `Não foi possível baixar (HTTP ${response.status}).`);
        return;
      }
      const url = URL.createObjectURL(await response.blob());
      const link = el("a", { href: url, download: task.arquivo, hidden: true });
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60_000);
      item.parts.note.textContent = "";
    } catch (_) {
      item.parts.note.textContent = "Não foi possível falar com a API.";
    } finally {
      button.disabled = false;
    }
  }

  async function cancel(item, taskId, button) {
    button.disabled = true;
    item.parts.note.textContent = "Cancelando…";
    let text;
    try {
      const result = await api("DELETE", `/relatorios/${taskId}`);
      if (result.ok) text = "Cancelamento pedido.";
      else if (result.status === 404) text = "Tarefa não encontrada.";
      else text = detailText(result.data, `Não foi possível cancelar (HTTP ${result.status}).`);
    } catch (_) {
      text = "Não foi possível falar com a API.";
    }
    item.parts.note.textContent = text;
    button.disabled = false;
    refreshTasks();
  }

  function announce(item, task) {
    const what = (STATUS_LABEL[task.status] || task.status).toLowerCase();
    $("anuncio").textContent = `Relatório ${item.title} (${item.short}): ${what}.`;
  }

  // ---------- system status (workers, queue) ----------

  async function refreshHealth() {
    const box = $("sistema");
    try {
      const { data } = await api("GET", "/health");
      if (!data) throw new Error("sem corpo");
      if (data.trabalhadores_vivos === undefined) {
        // The public answer (a key that is not an admin's): only ok or degraded.
        box.textContent = data.status === "ok" ? "Sistema funcionando" : "Sistema com problemas";
        box.dataset.ok = String(data.status === "ok");
        setTimeout(refreshHealth, HEALTH_MS);
        return;
      }
      const workers = data.trabalhadores_vivos || 0;
      const queue = data.fila === null || data.fila === undefined ? "?" : data.fila;
      const plural = workers === 1 ? "worker ativo" : "workers ativos";
      box.textContent = `${workers} ${plural} · ${queue} na fila`;
      box.dataset.ok = String(data.status === "ok");
      if (data.status !== "ok" && Array.isArray(data.problemas) && data.problemas.length) {
        box.textContent += ` · atenção: ${data.problemas.join("; ")}`;
      }
    } catch (_) {
      box.textContent = "API inacessível";
      box.dataset.ok = "false";
    }
    setTimeout(refreshHealth, HEALTH_MS);
  }

  // ---------- start ----------

  document.addEventListener("DOMContentLoaded", () => {
    $("form-entrar").addEventListener("submit", submitKey);
    $("sair").addEventListener("click", () => logOut(null));
    $("pedido").addEventListener("submit", submit);
    $("filtro-status").addEventListener("change", () => {
      state.limit = PAGE;
      refreshTasks();
    });
    $("mais").addEventListener("click", () => {
      state.limit = Math.min(MAX_PAGE, state.limit + PAGE);
      refreshTasks();
    });
    document.addEventListener("visibilitychange", () => {
      if (!document.hidden) refreshTasks();
    });
    const key = keyFromLink() || sessionStorage.getItem(KEY_STORAGE);
    if (key) logIn(key);
    else logOut(null);
    refreshHealth();
  });
})();
