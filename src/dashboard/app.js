// The Genesis dashboard: plain browser JavaScript, no framework and nothing fetched from
// elsewhere. It reads the same /api/v1 routes as the CLI (the session cookie authenticates;
// changes carry the session's CSRF token) and stays live through /api/v1/stream.
// Every value from the server is placed with textContent, never parsed as HTML.
'use strict';

const $ = (selector) => document.querySelector(selector);
const COLUMNS = ['MAC', 'Hostname', 'Role', 'Arch / firmware', 'State', 'Talos', 'Version', 'IP', 'Last seen'];

const ui = { csrf: null, defaultTalosVersion: '', nodes: new Map(), selected: null, logAfter: 0, logBusy: false, logAgain: false, stream: null };

class ApiError extends Error {}

async function api(method, path, body) {
  const headers = { accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (method !== 'GET') headers['x-genesis-csrf'] = ui.csrf;
  const res = await fetch(`/api/v1${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: 'same-origin' });
  if (res.status === 401) {
    showLogin('Your session ended; log in again.');
    throw new ApiError('not logged in');
  }
  const data = res.status === 204 ? null : await res.json().catch(() => null);
  if (!res.ok) throw new ApiError((data && data.message) || `${res.status} ${res.statusText}`);
  return data;
}

function el(tag, text, attrs = {}) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  return e;
}

function ago(iso) {
  if (!iso) return '—';
  const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ago`;
  return new Date(iso).toLocaleString();
}

/** Where Talos says the node is: its stage, and whether it is ready (joined). */
function talosText(n) {
  if (!n.talosStage) return '—';
  return n.talosStage + (n.talosReady ? ', ready' : '');
}

function row(n) {
  const tr = el('tr', undefined, { 'data-mac': n.mac, 'aria-selected': String(n.mac === ui.selected) });
  const cells = [
    n.mac,
    n.hostname || '—',
    n.role,
    [n.arch, n.firmware].filter(Boolean).join(' / ') || '—',
    n.state,
    talosText(n),
    n.talosVersion || ui.defaultTalosVersion,
    n.lastIp || '—',
    ago(n.talosSeen && (!n.lastSeen || n.talosSeen > n.lastSeen) ? n.talosSeen : n.lastSeen),
  ];
  cells.forEach((text, i) => {
    const td = el('td', text, { 'data-label': COLUMNS[i] });
    if (i === 0) td.className = 'mac';
    if (i === 4) {
      td.className = 'state';
      td.dataset.state = n.state;
      // Why Genesis holds this machine back from installing: shown in full, not only on hover.
      // A conflict first: two machines claim this MAC, and nothing is served until it is resolved.
      const attention = n.conflict ? `held: ${n.conflict} (genesis nodes confirm ${n.mac} <address>)` : n.waiting;
      if (attention) td.append(el('div', `⚠ ${attention}`, { class: 'attention', role: 'status' }));
    }
    tr.append(td);
  });
  tr.addEventListener('click', () => select(n.mac));
  return tr;
}

/** "5" for one architecture, "5: 3 amd64, 2 arm64" for a mixed fleet (unknown ones counted as such). */
function fleetCount(nodes) {
  const byArch = new Map();
  for (const n of nodes) byArch.set(n.arch ?? 'arch unknown', (byArch.get(n.arch ?? 'arch unknown') ?? 0) + 1);
  if (byArch.size < 2) return String(nodes.length);
  return `${nodes.length}: ${[...byArch].sort(([a], [b]) => a.localeCompare(b)).map(([a, k]) => `${k} ${a}`).join(', ')}`;
}

function renderFleet() {
  const body = $('#fleet tbody');
  body.replaceChildren(...[...ui.nodes.values()].map(row));
  $('#count').textContent = ui.nodes.size ? `(${fleetCount([...ui.nodes.values()])})` : '';
  $('#empty').hidden = ui.nodes.size > 0;
  $('#fleet').hidden = ui.nodes.size === 0;
}

async function renderCluster() {
  const [c, cold] = await Promise.all([api('GET', '/cluster'), api('GET', '/power/cold-start')]);
  const dl = $('#cluster-state');
  const holder = c.holder ? [c.holder.hostname, c.holder.mac, c.holder.ip && `(${c.holder.ip})`].filter(Boolean).join(' ') : '—';
  const facts = [
    ['Cluster', c.cluster],
    ['Bootstrap', c.state],
    ['Elected', holder],
    ['Epoch', c.epoch],
    ['Control planes answering', `${c.controlplanes.filter((p) => p.reachable).length} of ${c.controlplanes.length}`],
  ];
  if (c.orchestrator.waiting) facts.push(['Waiting', c.orchestrator.waiting]);
  if (c.recovery) facts.push(['Recovering from', c.recovery.snapshot]);
  if (cold.phase !== 'off') facts.push(['Cold start', `${cold.phase}: ${cold.message}`]);
  dl.replaceChildren(...facts.flatMap(([k, v]) => [el('dt', k), el('dd', v ?? '—', k === 'Bootstrap' ? { id: 'bootstrap-state' } : {})]));
}

function mib(bytes) {
  return `${(bytes / 1048576).toFixed(1)} MiB`;
}

async function renderBackups() {
  const { status, snapshots } = await api('GET', '/backups');
  const last = status.lastSuccess ? `last ${status.lastSuccess.name} ${ago(status.lastSuccess.takenAt)}` : 'no snapshot yet';
  const next = status.nextAt ? `next ${new Date(status.nextAt).toLocaleString()}` : status.waiting || 'not scheduled';
  const failed = status.lastFailure ? `; last failure: ${status.lastFailure.error}` : '';
  $('#backup-status').textContent = `${last}; ${next}${failed}`;
  $('#snapshots').replaceChildren(
    ...snapshots.slice(0, 10).map((s) => el('li', `${s.name} · ${mib(s.size)} · from ${s.source.hostname || s.source.mac}${s.secretsFile ? ' · secrets bundle encrypted beside it' : ''}`)),
  );
}

$('#backup-now').addEventListener('click', async () => {
  const msg = $('#backup-message');
  msg.className = '';
  msg.textContent = 'Taking a snapshot…';
  try {
    const { snapshot } = await api('POST', '/backups');
    msg.textContent = `Stored ${snapshot.name} (${mib(snapshot.size)}).`;
  } catch (err) {
    msg.className = 'error';
    msg.textContent = err.message;
  }
  await renderBackups().catch(() => {});
});

async function select(mac) {
  ui.selected = mac;
  ui.logAfter = 0;
  $('#klog').textContent = '';
  for (const tr of document.querySelectorAll('#fleet tbody tr')) tr.setAttribute('aria-selected', String(tr.dataset.mac === mac));
  $('#node').hidden = false;
  $('#node-message').textContent = '';
  renderNode();
  await Promise.all([renderTimeline(), appendLog()]);
  if (window.matchMedia('(max-width: 700px)').matches) $('#node').scrollIntoView({ behavior: 'smooth' });
}

function renderNode() {
  const n = ui.nodes.get(ui.selected);
  if (!n) {
    $('#node').hidden = true;
    return;
  }
  $('#node-title').textContent = n.hostname ? `${n.hostname} (${n.mac})` : n.mac;
  // Do not overwrite what the operator is typing.
  if (document.activeElement !== $('#role')) $('#role').value = n.role;
  if (document.activeElement !== $('#hostname')) $('#hostname').value = n.hostname || '';
  const facts = [
    ['State', n.state],
    ['Talos', talosText(n)],
    ['Talos version', n.talosVersion || `${ui.defaultTalosVersion} (default)`],
    ['Addresses', [n.lastIp, ...(n.talosAddresses || [])].filter((a, i, all) => a && all.indexOf(a) === i).join(', ') || '—'],
    ['Hardware', [n.manufacturer, n.product].filter(Boolean).join(' ') || '—'],
    ['First seen', n.firstSeen ? new Date(n.firstSeen).toLocaleString() : '—'],
  ];
  const method = n.power?.method || 'wol';
  $('#power-method').textContent = method === 'ipmi' ? `IPMI, BMC ${n.power.bmc.address}` : method === 'wol' ? 'Wake-on-LAN' : 'manual';
  // What the method cannot do is not offered (the API would refuse it with the reason anyway).
  for (const b of document.querySelectorAll('#power [data-power]')) {
    const a = b.dataset.power;
    b.hidden = a === 'reboot' || a === 'reinstall-now' ? false : method === 'manual' || (method === 'wol' && a !== 'on');
  }
  $('#node-facts').replaceChildren(...facts.flatMap(([k, v]) => [el('dt', k), el('dd', v, k === 'State' ? { id: 'node-state' } : {})]));
  renderConflict(n);
}

/** Two machines claimed this MAC: say so, and let the operator say which address is the real one. */
function renderConflict(n) {
  const box = $('#conflict');
  box.hidden = !n.conflict;
  if (!n.conflict) return box.replaceChildren();
  const addresses = /: (\S+) and (\S+)$/.exec(n.conflict)?.slice(1) ?? [];
  box.replaceChildren(
    el('p', `Held: ${n.conflict}. Nothing is served to either until you say which machine is real.`),
    ...addresses.map((ip) => {
      const b = el('button', `The real machine is ${ip}`, { type: 'button', class: 'secondary', 'data-ip': ip });
      b.addEventListener('click', () => confirmMachine(n.mac, ip));
      return b;
    }),
  );
}

async function confirmMachine(mac, ip) {
  const msg = $('#node-message');
  try {
    await api('POST', `/nodes/${encodeURIComponent(mac)}/confirm`, { ip });
    msg.className = '';
    msg.textContent = `Confirmed ${ip}: a new install window is open for it.`;
  } catch (err) {
    msg.className = 'error';
    msg.textContent = err.message;
  }
}

async function renderTimeline() {
  const mac = ui.selected;
  const t = await api('GET', `/nodes/${encodeURIComponent(mac)}/timeline`);
  if (mac !== ui.selected) return;
  const items = t.steps.map((s) => {
    const gap = s.sincePreviousMs === null ? '' : ` +${(s.sincePreviousMs / 1000).toFixed(1)}s`;
    const li = el('li', `${new Date(s.at).toLocaleTimeString()} ${s.step}${gap}`);
    if (s.detail && (s.detail.error || s.detail.reason)) li.title = String(s.detail.error || s.detail.reason);
    return li;
  });
  $('#timeline').replaceChildren(...items);
}

async function appendLog() {
  // A node logging fast announces many batches: one request at a time, then one more for the rest.
  if (ui.logBusy) {
    ui.logAgain = true;
    return;
  }
  ui.logBusy = true;
  try {
    do {
      ui.logAgain = false;
      // A full page means there may be more: keep paging forward.
      if ((await fetchLog()) === LOG_PAGE) ui.logAgain = true;
    } while (ui.logAgain);
  } finally {
    ui.logBusy = false;
  }
}

const LOG_PAGE = 1000;

/** One page of the selected node's log after what is shown; returns how many lines came. */
async function fetchLog() {
  const mac = ui.selected;
  const from = ui.logAfter ? `after=${ui.logAfter}&` : '';
  const r = await api('GET', `/nodes/${encodeURIComponent(mac)}/logs?${from}limit=${LOG_PAGE}`);
  if (mac !== ui.selected) return 0;
  if (!r.lines.length) {
    if (!ui.logAfter) $('#klog').textContent = '(nothing received yet)';
    return 0;
  }
  const pre = $('#klog');
  if (!ui.logAfter) pre.textContent = '';
  const atBottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
  for (const l of r.lines) {
    const line = el('span', `${l.talosTime || l.receivedAt} ${l.level || ''} ${l.msg}\n`);
    if (l.level === 'error') line.className = 'error';
    pre.append(line);
  }
  // A ring on the page too: the newest 2000 lines.
  while (pre.childNodes.length > 2000) pre.firstChild.remove();
  ui.logAfter = r.lines[r.lines.length - 1].id;
  if (atBottom) pre.scrollTop = pre.scrollHeight;
  return r.lines.length;
}

function connectStream() {
  ui.stream?.close();
  const es = new EventSource('/api/v1/stream');
  ui.stream = es;
  const live = $('#live');
  es.onopen = () => {
    live.dataset.state = 'on';
    live.textContent = 'live';
    // Anything missed while disconnected: reload the fleet once.
    void loadFleet();
  };
  es.onerror = () => {
    live.dataset.state = 'off';
    live.textContent = 'reconnecting';
  };
  es.addEventListener('node', (m) => {
    const { event, node } = JSON.parse(m.data);
    if (node) ui.nodes.set(node.mac, node);
    else ui.nodes.delete(event.mac);
    renderFleet();
    if (event.mac === ui.selected) {
      renderNode();
      void renderTimeline().catch(() => {});
    }
    if (String(event.type).startsWith('bootstrap')) void renderCluster().catch(() => {});
  });
  es.addEventListener('log', (m) => {
    const { mac } = JSON.parse(m.data);
    if (mac === ui.selected) void appendLog().catch(() => {});
  });
}

async function loadFleet() {
  const { nodes } = await api('GET', '/nodes');
  ui.nodes = new Map(nodes.map((n) => [n.mac, n]));
  renderFleet();
  renderNode();
}

function showLogin(message) {
  ui.stream?.close();
  $('#app').hidden = true;
  $('#logout').hidden = true;
  $('#login').hidden = false;
  const err = $('#login-error');
  err.hidden = !message;
  err.textContent = message || '';
  $('#token').focus();
}

async function start() {
  const params = new URLSearchParams(location.search);
  const res = await fetch('/ui/session', { credentials: 'same-origin' });
  if (!res.ok) {
    const why = params.get('login');
    showLogin(why === 'failed' ? 'That token was not accepted.' : why === 'throttled' ? 'Too many attempts; wait a minute.' : '');
    return;
  }
  if (params.has('login')) history.replaceState(null, '', '/');
  const session = await res.json();
  ui.csrf = session.csrf;
  ui.defaultTalosVersion = session.defaultTalosVersion;
  $('#login').hidden = true;
  $('#app').hidden = false;
  $('#logout').hidden = false;
  await Promise.all([loadFleet(), renderCluster(), renderBackups()]);
  connectStream();
  // "Last seen" ages; the cluster state moves without node events after the bootstrap.
  setInterval(() => {
    renderFleet();
    void renderCluster().catch(() => {});
    void renderBackups().catch(() => {});
  }, 10_000);
}

$('#assign').addEventListener('submit', async (e) => {
  e.preventDefault();
  const mac = ui.selected;
  const msg = $('#node-message');
  const hostname = $('#hostname').value.trim();
  try {
    const node = await api('PATCH', `/nodes/${encodeURIComponent(mac)}`, { role: $('#role').value, hostname: hostname || null });
    ui.nodes.set(node.mac, node);
    renderFleet();
    renderNode();
    msg.className = '';
    msg.textContent = `Saved: ${node.role}${node.hostname ? `, ${node.hostname}` : ''}.`;
  } catch (err) {
    msg.className = 'error';
    msg.textContent = err.message;
  }
});

$('#reinstall').addEventListener('click', async () => {
  const mac = ui.selected;
  if (!confirm(`Reinstall ${mac}? Its next network boot installs Talos again, wiping the install disk.`)) return;
  const msg = $('#node-message');
  try {
    await api('POST', `/nodes/${encodeURIComponent(mac)}/reinstall`);
    msg.className = '';
    msg.textContent = 'Reinstall requested: power-cycle the machine (or reboot it) to start.';
  } catch (err) {
    msg.className = 'error';
    msg.textContent = err.message;
  }
});

const POWER_CONFIRM = {
  off: 'Power off %s? Its workloads stop at once.',
  cycle: 'Power-cycle %s? It restarts without shutting down.',
  reboot: 'Reboot %s through Talos?',
  'reinstall-now': 'Reinstall %s now? Talos wipes its system disk and reboots into the installer.',
};

$('#power').addEventListener('click', async (e) => {
  const action = e.target.closest('[data-power]')?.dataset.power;
  if (!action) return;
  const mac = ui.selected;
  if (POWER_CONFIRM[action] && !confirm(POWER_CONFIRM[action].replace('%s', mac))) return;
  const msg = $('#node-message');
  try {
    const path = `/nodes/${encodeURIComponent(mac)}`;
    const r = action === 'reinstall-now' ? (await api('POST', `${path}/reinstall`, { reset: true })).power : await api('POST', `${path}/power`, { action });
    msg.className = '';
    msg.textContent = `${action === 'reinstall-now' ? 'Reinstall' : `Power ${action}`}: ${r.result}.`;
  } catch (err) {
    msg.className = 'error';
    msg.textContent = err.message;
  }
});

$('#logout').addEventListener('click', async () => {
  await fetch('/ui/logout', { method: 'POST', headers: { 'x-genesis-csrf': ui.csrf || '' }, credentials: 'same-origin' });
  location.assign('/');
});

void start().catch((err) => {
  if (!(err instanceof ApiError)) console.error(err);
});
