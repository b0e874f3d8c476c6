// DagWidget's front end (anywidget ESM, no build step). The graph SVG arrives once per DAG structure;
// afterwards only `states` ({task_id: state}) changes, and each node gets a data-state attribute that
// the CSS colours. Clicking a node selects its task here at once (row highlight, log panel title);
// the kernel sends that task's log when it next refreshes.

function fmtDuration(seconds) {
  if (seconds === null || seconds === undefined) return "";
  return seconds < 10 ? seconds.toFixed(2) + " s" : seconds.toFixed(1) + " s";
}

function el(tag, attrs = {}, text = "") {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  if (text) node.textContent = text;
  return node;
}

function render({ model, el: root }) {
  root.classList.add("nbflow-dag");
  const header = el("div", { class: "nbflow-header" });
  const title = el("span", { class: "nbflow-title" });
  const runSelect = el("select", { class: "nbflow-runs", title: "run shown" });
  const trigger = el("button", { class: "nbflow-trigger" }, "Trigger");
  const clear = el("button", { class: "nbflow-clear" }, "Clear failed");
  const pause = el("button", { class: "nbflow-pause" }, "Pause");
  const message = el("div", { class: "nbflow-message" });
  header.append(title, runSelect, trigger, clear, pause);
  const graph = el("div", { class: "nbflow-graph" });
  const table = el("table", { class: "nbflow-tasks" });
  const logTitle = el("div", { class: "nbflow-log-title" });
  const log = el("pre", { class: "nbflow-log" });
  root.append(header, message, graph, table, logTitle, log);

  const taskOfNode = () => model.get("node_ids") || {};

  function drawGraph() {
    graph.innerHTML = model.get("svg") || "";
    for (const node of graph.querySelectorAll("g.node")) {
      node.addEventListener("click", () => select(taskOfNode()[node.id]));
    }
    paintStates();
  }

  function paintStates() {
    const states = model.get("states") || {};
    const nodes = taskOfNode();
    for (const node of graph.querySelectorAll("g.node")) {
      const task = nodes[node.id];
      node.setAttribute("data-state", (task && states[task]) || "none");
      node.classList.toggle("nbflow-selected", task !== undefined && task === model.get("selected_task"));
    }
  }

  function drawRuns() {
    const runs = model.get("runs") || [];
    runSelect.replaceChildren();
    const latest = el("option", { value: "" }, "latest run");
    runSelect.append(latest);
    for (const run of runs) {
      const option = el("option", { value: run.run_id }, `${run.run_id} (${run.state})`);
      runSelect.append(option);
    }
    runSelect.value = model.get("follow_latest") ? "" : model.get("run_id") || "";
    title.textContent = `${model.get("dag_id")}` + (model.get("run_id") ? ` · ${model.get("run_id")}` : " · no runs yet");
  }

  function drawTasks() {
    const rows = model.get("tasks") || [];
    table.replaceChildren();
    const head = el("tr");
    for (const name of ["task", "state", "try", "started", "duration"]) head.append(el("th", {}, name));
    table.append(head);
    for (const row of rows) {
      const tr = el("tr", { "data-task": row.task_id, "data-state": row.state || "none" });
      if (row.next_at) tr.title = `${row.state}: ${row.next_at}`;  // a rescheduled sensor's next poke, a retry's time
      tr.append(el("td", {}, row.label), el("td", { class: "nbflow-state" }, row.state || "no status"),
                el("td", {}, String(row.try_number)), el("td", {}, row.start || ""),
                el("td", {}, fmtDuration(row.duration)));
      tr.addEventListener("click", () => select(row.task_id));
      tr.classList.toggle("nbflow-selected", row.task_id === model.get("selected_task"));
      table.append(tr);
    }
  }

  function drawLog() {
    const task = model.get("selected_task");
    logTitle.textContent = task ? `log of ${task}` + (model.get("log_try") ? `, try ${model.get("log_try")}` : "")
                                : "click a task to see its log";
    log.textContent = model.get("log") || "";
    log.scrollTop = log.scrollHeight;
  }

  function select(task) {
    if (!task) return;
    model.set("selected_task", task);
    model.save_changes();
    paintStates();
    drawTasks();
    drawLog();
  }

  function drawPaused() {
    const paused = model.get("paused");
    pause.textContent = paused ? "Unpause" : "Pause";
    pause.disabled = paused === null;
    root.classList.toggle("nbflow-paused", paused === true);
  }

  runSelect.addEventListener("change", () => {
    model.set("follow_latest", runSelect.value === "");
    if (runSelect.value) model.set("run_id", runSelect.value);
    model.save_changes();
  });
  trigger.addEventListener("click", () => model.send({ action: "trigger" }));
  clear.addEventListener("click", () => model.send({ action: "clear_failed" }));
  pause.addEventListener("click", () => model.send({ action: model.get("paused") ? "unpause" : "pause" }));

  model.on("change:svg", drawGraph);
  model.on("change:states", paintStates);
  model.on("change:runs", drawRuns);
  model.on("change:run_id", drawRuns);
  model.on("change:tasks", drawTasks);
  model.on("change:log", drawLog);
  model.on("change:selected_task", () => { paintStates(); drawTasks(); drawLog(); });
  model.on("change:paused", drawPaused);
  model.on("change:message", () => { message.textContent = model.get("message") || ""; });

  drawGraph();
  drawRuns();
  drawTasks();
  drawLog();
  drawPaused();
  message.textContent = model.get("message") || "";
}

export default { render };
