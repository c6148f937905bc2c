// Progressive enhancement: pages work without this; with it, live tables refresh in place.
"use strict";

function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.content : "";
}

function cell(text) {
  const td = document.createElement("td");
  td.textContent = text;
  return td;
}

function hangUpButton(tenant, id) {
  const td = document.createElement("td");
  const button = document.createElement("button");
  button.type = "button";
  button.textContent = "Hang up";
  button.addEventListener("click", async () => {
    button.disabled = true;
    await fetch(`/t/${encodeURIComponent(tenant)}/calls/${encodeURIComponent(id)}/hangup`, {
      method: "POST",
      headers: { "X-CSRF-Token": csrfToken() },
      credentials: "same-origin",
    });
  });
  td.appendChild(button);
  return td;
}

function monitorButtons(tenant, id) {
  // Listen / whisper / barge: the switch rings the phone named in the page's #supervisor.
  const span = document.createElement("span");
  for (const mode of ["listen", "whisper", "barge"]) {
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = mode[0].toUpperCase() + mode.slice(1);
    button.addEventListener("click", async () => {
      const status = document.getElementById("monitor-status");
      const field = document.getElementById("supervisor");
      const body = new URLSearchParams({ mode, supervisor: field ? field.value : "" });
      const answer = await fetch(
        `/t/${encodeURIComponent(tenant)}/calls/${encodeURIComponent(id)}/monitor`,
        { method: "POST", body, headers: { "X-CSRF-Token": csrfToken() }, credentials: "same-origin" },
      );
      const outcome = await answer.json().catch(() => ({}));
      if (status) {
        status.textContent = outcome.ringing || outcome.error || `refused (${answer.status})`;
        status.className = outcome.ringing ? "" : "error";
      }
    });
    span.append(button, " ");
  }
  return span;
}

function renderCalls(table, calls) {
  const body = table.tBodies[0];
  const hangup = table.dataset.hangup === "yes";
  const rows = calls.map((c) => {
    const tr = document.createElement("tr");
    tr.dataset.call = c.id;
    tr.append(
      cell(`${c.caller} ${c.caller_name}`.trim()),
      cell(c.dialled),
      cell(c.callee),
      cell(c.state),
      cell(`${c.duration} s`),
    );
    if (hangup) tr.appendChild(hangUpButton(table.dataset.tenant, c.id));
    if (table.dataset.monitor === "yes") {
      const td = hangup ? tr.lastChild : tr.appendChild(document.createElement("td"));
      td.prepend(monitorButtons(table.dataset.tenant, c.id));
    }
    return tr;
  });
  if (rows.length === 0) {
    const tr = document.createElement("tr");
    tr.className = "empty";
    const td = cell("No call in progress.");
    td.colSpan = 6;
    tr.appendChild(td);
    rows.push(tr);
  }
  // Keep the focused button's row when it is still there, so keyboard users do not lose place.
  body.replaceChildren(...rows);
  const status = document.getElementById("calls-status");
  if (status) status.textContent = `${calls.length} call(s) in progress.`;
}

function pollCalls(table) {
  let busy = false;
  const tick = async () => {
    if (busy || document.hidden) return;
    busy = true;
    try {
      const answer = await fetch(table.dataset.source, { credentials: "same-origin" });
      if (answer.status === 401 || answer.redirected) {
        window.location.assign("/login");
        return;
      }
      if (answer.ok) renderCalls(table, (await answer.json()).calls);
    } catch (err) {
      // The switch restarting: try again at the next tick.
    } finally {
      busy = false;
    }
  };
  setInterval(tick, 1000);
}

function pollFragment(element) {
  // A live part of a page (conference rooms, queue boards): its HTML from data-refresh,
  // every 2 s, unless a control in it has the focus (a keyboard user would lose place).
  const tick = async () => {
    if (document.hidden || element.contains(document.activeElement)) return;
    try {
      const answer = await fetch(element.dataset.refresh, { credentials: "same-origin" });
      if (answer.ok && !answer.redirected) element.innerHTML = await answer.text();
    } catch (err) {
      // The switch restarting: try again at the next tick.
    }
  };
  setInterval(tick, 2000);
}

document.addEventListener("DOMContentLoaded", () => {
  const table = document.getElementById("live-calls");
  if (table) pollCalls(table);
  document.querySelectorAll("[data-refresh]").forEach(pollFragment);
});

// A form marked data-confirm (a delete) asks first; without this script the server's own
// confirmation pages (users, plans) still stand in the way.
document.addEventListener("submit", (event) => {
  const form = event.target;
  const button = event.submitter;
  const question = (button && button.dataset.confirmButton) || (form instanceof HTMLFormElement && form.dataset.confirm);
  if (question && !window.confirm(question)) {
    event.preventDefault();
  }
});
