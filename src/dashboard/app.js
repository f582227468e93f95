// The Genesis dashboard: plain browser JavaScript, no framework and nothing fetched from
// elsewhere. It reads the same /api/v1 routes as the CLI (the session cookie authenticates;
// changes carry the session's CSRF token) and stays live through /api/v1/stream.
// Every value from the server is placed with textContent, never parsed as HTML.
'use strict';

const $ = (selector) => document.querySelector(selector);
/** The fleet's columns: heading, and the key its sort button orders by. */
const COLUMNS = [
  ['MAC', 'mac'],
  ['Hostname', 'hostname'],
  ['Role', 'role'],
  ['Arch / firmware', 'arch'],
  ['State', 'state'],
  ['Talos', 'talosStage'],
  ['Version', 'talosVersion'],
  ['IP', 'lastIp'],
  ['Last seen', 'lastSeen'],
];

const ui = {
  csrf: null,
  defaultTalosVersion: '',
  nodes: new Map(),
  selected: null,
  logAfter: 0,
  logBusy: false,
  logAgain: false,
  stream: null,
  filter: '',
  sort: { key: 'mac', dir: 1 },
  // The settings form holds the operator's unsaved edits: live updates do not overwrite them.
  detailsDirty: false,
};

class ApiError extends Error {}

async function api(method, path, body) {
  const res = await request(method, path, body, 'application/json');
  return res.status === 204 ? null : await res.json().catch(() => null);
}

/** A text answer (the config preview is YAML). */
async function apiText(path) {
  return (await request('GET', path, undefined, 'application/yaml')).text();
}

async function request(method, path, body, accept) {
  const headers = { accept };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (method !== 'GET') headers['x-genesis-csrf'] = ui.csrf;
  const res = await fetch(`/api/v1${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: 'same-origin' });
  if (res.status === 401) {
    showLogin('Your session ended; log in again.');
    throw new ApiError('not logged in');
  }
  if (!res.ok) {
    const data = await res.json().catch(() => null);
    throw new ApiError((data && data.message) || `${res.status} ${res.statusText}`);
  }
  return res;
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

/**
 * Why this machine needs the operator, or null: two machines claim its MAC, Genesis holds it back
 * (assets missing, a config that cannot be rendered, iPXE loading itself in a loop).
 */
function attentionOf(n) {
  if (n.conflict) return `held: ${n.conflict} (genesis nodes confirm ${n.mac} <address>)`;
  return n.waiting || null;
}

/** A short name for the attention reason, for the badge beside the MAC. */
function badgeOf(n) {
  if (n.conflict) return 'conflict';
  const w = n.waiting || '';
  if (/kernel and initramfs|assets/.test(w)) return 'needs assets';
  if (/cannot be rendered/.test(w)) return 'config error';
  if (/loading iPXE again/.test(w)) return 'iPXE loop';
  return w ? 'waiting' : null;
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
    const td = el('td', undefined, { 'data-label': COLUMNS[i][0] });
    if (i === 0) {
      td.className = 'mac';
      // A real link: the permalink of the machine, reachable with the keyboard.
      const a = el('a', text, { href: `#node=${n.mac}` });
      a.addEventListener('click', (e) => {
        e.preventDefault();
        e.stopPropagation();
        void select(n.mac);
      });
      td.append(a);
      const badge = badgeOf(n);
      if (badge) td.append(el('span', badge, { class: 'badge' }));
    } else {
      td.textContent = text;
    }
    if (i === 4) {
      td.className = 'state';
      td.dataset.state = n.state;
      // Why Genesis holds this machine back from installing: shown in full, not only on hover.
      // A conflict first: two machines claim this MAC, and nothing is served until it is resolved.
      const attention = attentionOf(n);
      if (attention) td.append(el('div', `⚠ ${attention}`, { class: 'attention', role: 'status' }));
    }
    tr.append(td);
  });
  tr.addEventListener('click', () => select(n.mac));
  return tr;
}

/** "2 installed, 1 waiting · 2 controlplane, 1 worker · 1 needs attention": counts for the heading. */
function fleetSummary(nodes) {
  const count = (key) => {
    const m = new Map();
    for (const n of nodes) m.set(key(n), (m.get(key(n)) ?? 0) + 1);
    return [...m].sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => `${v} ${k}`).join(', ');
  };
  const attention = nodes.filter(attentionOf).length;
  return [count((n) => n.state), count((n) => n.role), attention ? `${attention} need${attention === 1 ? 's' : ''} attention` : ''].filter(Boolean).join(' · ');
}

/** Does the machine match the search words (every word somewhere in its MAC, names, addresses, labels, state)? */
function matches(n, filter) {
  if (!filter) return true;
  const hay = [n.mac, n.hostname, n.role, n.state, n.arch, n.firmware, n.lastIp, ...(n.talosAddresses || []), n.product, n.manufacturer, n.serial, attentionOf(n),
    ...Object.entries(n.labels || {}).map(([k, v]) => `${k}=${v}`)].filter(Boolean).join(' ').toLowerCase();
  return filter.toLowerCase().split(/\s+/).every((w) => hay.includes(w));
}

function sortValue(n, key) {
  if (key === 'lastIp') return (n.lastIp || '').split('.').map((p) => p.padStart(3, '0')).join('.');
  if (key === 'lastSeen') return (n.talosSeen && (!n.lastSeen || n.talosSeen > n.lastSeen) ? n.talosSeen : n.lastSeen) || '';
  if (key === 'talosVersion') return n.talosVersion || ui.defaultTalosVersion;
  return String(n[key] ?? '');
}

function renderHeader() {
  const tr = $('#fleet thead tr');
  tr.replaceChildren(
    ...COLUMNS.map(([title, key]) => {
      const th = el('th', undefined, { scope: 'col' });
      if (ui.sort.key === key) th.setAttribute('aria-sort', ui.sort.dir > 0 ? 'ascending' : 'descending');
      const b = el('button', title, { type: 'button', class: 'sort', 'data-sort': key });
      b.addEventListener('click', () => {
        ui.sort = { key, dir: ui.sort.key === key ? -ui.sort.dir : 1 };
        renderHeader();
        renderFleet();
      });
      th.append(b);
      return th;
    }),
  );
}

/** "5" for one architecture, "5: 3 amd64, 2 arm64" for a mixed fleet (unknown ones counted as such). */
function fleetCount(nodes) {
  const byArch = new Map();
  for (const n of nodes) byArch.set(n.arch ?? 'arch unknown', (byArch.get(n.arch ?? 'arch unknown') ?? 0) + 1);
  if (byArch.size < 2) return String(nodes.length);
  return `${nodes.length}: ${[...byArch].sort(([a], [b]) => a.localeCompare(b)).map(([a, k]) => `${k} ${a}`).join(', ')}`;
}

function renderFleet() {
  const all = [...ui.nodes.values()];
  const { key, dir } = ui.sort;
  const shown = all.filter((n) => matches(n, ui.filter)).sort((a, b) => dir * sortValue(a, key).localeCompare(sortValue(b, key)) || a.mac.localeCompare(b.mac));
  $('#fleet tbody').replaceChildren(...shown.map(row));
  $('#count').textContent = ui.nodes.size ? `(${fleetCount(all)}${shown.length < all.length ? `, ${shown.length} shown` : ''})` : '';
  $('#summary').textContent = all.length ? fleetSummary(all) : '';
  $('#empty').hidden = ui.nodes.size > 0;
  $('#fleet').hidden = ui.nodes.size === 0;
}

$('#search').addEventListener('input', (e) => {
  ui.filter = e.target.value.trim();
  renderFleet();
});

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

/** Another proxyDHCP, or a second Genesis for this cluster, answering PXE clients (GET /lan): shown until it is gone. */
async function renderLan() {
  const { findings } = await api('GET', '/lan');
  const rank = (f) => (f.severity === 'fail' ? 0 : 1);
  const problems = findings.filter((f) => f.severity !== 'ok').sort((a, b) => rank(a) - rank(b));
  $('#lan-findings').replaceChildren(...problems.map((f) => el('li', f.text, { 'data-severity': f.severity })));
  $('#lan').hidden = problems.length === 0;
}

function mib(bytes) {
  return `${(bytes / 1048576).toFixed(1)} MiB`;
}

async function renderBackups() {
  const { status, snapshots } = await api('GET', '/backups');
  const last = status.lastSuccess ? `last ${status.lastSuccess.name} ${ago(status.lastSuccess.takenAt)}` : 'no snapshot yet';
  // Before the bootstrap the schedule looks again every few seconds: why it waits says more than when.
  const next = status.waiting || (status.nextAt ? `next ${new Date(status.nextAt).toLocaleString()}` : 'not scheduled');
  const failed = status.lastFailure ? `; last failure: ${status.lastFailure.error}` : '';
  $('#backup-status').textContent = `${last}; ${next}${failed}`;
  $('#snapshots').replaceChildren(
    ...snapshots.slice(0, 10).map((s) => {
      const li = el('li', `${s.name} · ${mib(s.size)} · from ${s.source.hostname || s.source.mac}${s.secretsFile ? ' · secrets bundle encrypted beside it' : ''}`, { 'data-name': s.name });
      li.append(el('button', 'Verify', { type: 'button', class: 'secondary', 'data-verify': s.name }), el('button', 'Recover from this…', { type: 'button', class: 'danger', 'data-recover': s.name }));
      return li;
    }),
  );
}

/** Run an action; its outcome (or the server's refusal) in the message line `where`. */
async function act(where, action) {
  const msg = $(where);
  try {
    const said = await action();
    msg.className = '';
    msg.textContent = said || '';
  } catch (err) {
    msg.className = 'error';
    msg.textContent = err.message;
  }
}

$('#snapshots').addEventListener('click', (e) => {
  const verify = e.target.closest('[data-verify]')?.dataset.verify;
  const recover = e.target.closest('[data-recover]')?.dataset.recover;
  if (verify) {
    void act('#backup-message', async () => {
      const r = await api('POST', `/backups/${encodeURIComponent(verify)}/verify`);
      if (!r.ok) throw new ApiError(`${r.name}: DAMAGED: ${r.problems.join('; ')}`);
      return `${r.name}: OK (${mib(r.size)}, sha256 ${r.sha256.slice(0, 12)}…, etcd hash ${r.etcdIntegrity === 'hash-ok' ? 'ok' : 'absent'})`;
    });
  }
  if (recover) {
    // Typing the cluster's name is the "are you sure", as for genesis cluster recover --confirm.
    const confirmName = prompt(`Recover the cluster's etcd from ${recover}? Every control plane must have no etcd left (reset them first). Type the cluster name to go on:`);
    if (confirmName === null) return;
    void act('#backup-message', async () => {
      await api('POST', '/cluster/recover', { snapshot: recover, confirm: confirmName });
      void renderCluster().catch(() => {});
      return `Recovery from ${recover} started: the cluster card follows it.`;
    });
  }
});

$('#show-join-token').addEventListener('click', () => {
  const code = $('#join-token');
  if (!code.hidden) {
    code.hidden = true;
    return;
  }
  void act('#cluster-message', async () => {
    const { token } = await api('GET', '/cluster/join-token');
    code.textContent = token;
    code.hidden = false;
    return 'The join token for the claim API (POST /api/v1/bootstrap/claim); keep it to your machines.';
  });
});

$('#reset-bootstrap').addEventListener('click', () => {
  const confirmName = prompt('Reset the bootstrap lock? Only for tearing the cluster down: a new etcd cluster may then be bootstrapped. Type the cluster name to go on:');
  if (confirmName === null) return;
  void act('#cluster-message', async () => {
    const c = await api('POST', '/cluster/reset', { confirm: confirmName });
    void renderCluster().catch(() => {});
    return `Bootstrap lock reset: ${c.state}.`;
  });
});

$('#backup-now').addEventListener('click', async () => {
  $('#backup-message').className = '';
  $('#backup-message').textContent = 'Taking a snapshot…';
  await act('#backup-message', async () => {
    const { snapshot } = await api('POST', '/backups');
    return `Stored ${snapshot.name} (${mib(snapshot.size)}).`;
  });
  await renderBackups().catch(() => {});
});

async function select(mac) {
  ui.selected = mac;
  ui.logAfter = 0;
  ui.detailsDirty = false;
  // The address bar is the permalink: reload or share it and the same machine is open.
  if (location.hash !== `#node=${mac}`) history.replaceState(null, '', `#node=${mac}`);
  $('#permalink').href = `#node=${mac}`;
  $('#klog').textContent = '';
  $('#config-preview').hidden = true;
  clearFieldErrors();
  for (const tr of document.querySelectorAll('#fleet tbody tr')) tr.setAttribute('aria-selected', String(tr.dataset.mac === mac));
  $('#node').hidden = false;
  $('#node-message').textContent = '';
  renderNode();
  await Promise.all([renderTimeline(), appendLog()]);
  if (!window.matchMedia('(min-width: 1100px)').matches) $('#node').scrollIntoView({ behavior: 'smooth' });
}

function closeNode() {
  ui.selected = null;
  history.replaceState(null, '', location.pathname);
  $('#node').hidden = true;
  for (const tr of document.querySelectorAll('#fleet tbody tr')) tr.setAttribute('aria-selected', 'false');
}

$('#close-node').addEventListener('click', closeNode);

/** The permalink opened, or changed by hand: open that machine (once the fleet is loaded). */
function selectFromHash() {
  const mac = /^#node=([0-9a-f:]{17})$/i.exec(location.hash)?.[1]?.toLowerCase();
  if (mac && mac !== ui.selected && ui.nodes.has(mac)) void select(mac);
}
window.addEventListener('hashchange', selectFromHash);

const selectorText = (o) => Object.entries(o || {}).map(([k, v]) => `${k}=${v}`).join(', ');

/** "a=b, c=d" → {a: "b", c: "d"}; a part without "=" is an error naming it. */
function parsePairs(text, field) {
  const out = {};
  for (const part of text.split(',').map((p) => p.trim()).filter(Boolean)) {
    const i = part.indexOf('=');
    if (i <= 0) throw new FieldError(field, `${field}: "${part}" is not key=value`);
    out[part.slice(0, i).trim()] = part.slice(i + 1).trim();
  }
  return out;
}

class FieldError extends Error {
  constructor(field, message) {
    super(message);
    this.field = field;
  }
}

/** The settings form from the node, unless the operator is editing it. */
function fillDetails(n, force) {
  if (ui.detailsDirty && !force) return;
  $('#install-disk').value = n.installDisk || '';
  $('#disk-selector').value = selectorText(n.diskSelector);
  $('#labels').value = selectorText(n.labels);
  $('#talos-version').value = n.talosVersion || '';
  $('#talos-version').placeholder = `${ui.defaultTalosVersion} (default)`;
  $('#address').value = n.network?.address || '';
  $('#gateway').value = n.network?.gateway || '';
  $('#nameservers').value = (n.network?.nameservers || []).join(', ');
  $('#patch').value = n.configPatch || '';
  $('#bootstrap').checked = Boolean(n.bootstrap);
  $('#power-method-select').value = n.power?.method || 'wol';
  $('#bmc-address').value = n.power?.bmc?.address || '';
  $('#bmc-user').value = n.power?.bmc?.username || '';
  $('#bmc-password-file').value = n.power?.bmc?.passwordFile || '';
  showBmcFields();
  ui.detailsDirty = false;
}

/** The BMC fields only for IPMI. */
function showBmcFields() {
  const ipmi = $('#power-method-select').value === 'ipmi';
  for (const f of document.querySelectorAll('#details .bmc')) f.hidden = !ipmi;
}
$('#power-method-select').addEventListener('change', showBmcFields);

$('#details').addEventListener('input', () => {
  ui.detailsDirty = true;
});

/** Which input a server message is about: the API names the field first ("installDisk …", "network.gateway …"). */
const FIELD_OF_MESSAGE = [
  [/^installDisk/, 'install-disk'],
  [/^diskSelector|^give installDisk or diskSelector/, 'disk-selector'],
  [/^labels?\b/, 'labels'],
  [/^talosVersion/, 'talos-version'],
  [/^network\.address|^network\b(?!\.)/, 'address'],
  [/^network\.gateway/, 'gateway'],
  [/^network\.nameservers/, 'nameservers'],
  [/^configPatch/, 'patch'],
  [/^bootstrap/, 'bootstrap'],
  [/^power\.bmc\.address/, 'bmc-address'],
  [/^power\.bmc\.username/, 'bmc-user'],
  [/^power\.bmc\.passwordFile/, 'bmc-password-file'],
  [/^power/, 'power-method-select'],
];

function clearFieldErrors() {
  for (const e of document.querySelectorAll('#details [aria-invalid]')) {
    e.removeAttribute('aria-invalid');
    e.removeAttribute('aria-describedby');
  }
  for (const e of document.querySelectorAll('#details .field-error')) e.remove();
  $('#details-error').hidden = true;
}

/** The server's reason beside the field it names (and in the form's alert line). */
function showFieldError(message, field) {
  // A schema refusal reads "body field labels.x must …"; the field's own checks name it first.
  const about = message.replace(/^body field /, '');
  const id = field || FIELD_OF_MESSAGE.find(([re]) => re.test(about))?.[1];
  const box = $('#details-error');
  box.hidden = false;
  box.textContent = message;
  if (!id) return;
  const input = document.getElementById(id);
  input.setAttribute('aria-invalid', 'true');
  input.setAttribute('aria-describedby', `${id}-error`);
  input.parentElement.append(el('span', message, { id: `${id}-error`, class: 'field-error' }));
  input.focus();
}

/** Only what the operator changed is sent: a field left alone is not re-validated or rewritten. */
function detailChanges(n) {
  const changes = {};
  const text = (id) => document.getElementById(id).value.trim();
  const disk = text('install-disk') || null;
  if (disk !== (n.installDisk || null)) changes.installDisk = disk;
  const selector = text('disk-selector');
  if (selector !== selectorText(n.diskSelector)) changes.diskSelector = selector ? parsePairs(selector, 'diskSelector') : null;
  const labels = text('labels');
  if (labels !== selectorText(n.labels)) changes.labels = parsePairs(labels, 'labels');
  const version = text('talos-version') || null;
  if (version !== (n.talosVersion || null)) changes.talosVersion = version;
  const address = text('address');
  const gateway = text('gateway');
  const nameservers = text('nameservers').split(',').map((s) => s.trim()).filter(Boolean);
  const network = address ? { address, ...(gateway ? { gateway } : {}), ...(nameservers.length ? { nameservers } : {}) } : null;
  if (!address && (gateway || nameservers.length)) throw new FieldError('address', 'network: a gateway or nameservers need a static address');
  if (JSON.stringify(network) !== JSON.stringify(n.network || null)) changes.network = network;
  const patch = $('#patch').value.trim() ? $('#patch').value : null;
  if (patch !== (n.configPatch || null)) changes.configPatch = patch;
  if ($('#bootstrap').checked !== Boolean(n.bootstrap)) changes.bootstrap = $('#bootstrap').checked;
  const method = $('#power-method-select').value;
  const power = method === 'ipmi' ? { method, bmc: { address: text('bmc-address'), username: text('bmc-user'), passwordFile: text('bmc-password-file') } } : { method };
  if (JSON.stringify(power) !== JSON.stringify(n.power || { method: 'wol' })) changes.power = power;
  return changes;
}

$('#details').addEventListener('submit', async (e) => {
  e.preventDefault();
  const mac = ui.selected;
  const n = ui.nodes.get(mac);
  const msg = $('#node-message');
  clearFieldErrors();
  try {
    const changes = detailChanges(n);
    if (!Object.keys(changes).length) {
      msg.className = '';
      msg.textContent = 'Nothing to save: no setting changed.';
      return;
    }
    const node = await api('PATCH', `/nodes/${encodeURIComponent(mac)}`, changes);
    ui.nodes.set(node.mac, node);
    ui.detailsDirty = false;
    renderFleet();
    renderNode();
    fillDetails(node, true);
    msg.className = node.warnings?.length ? 'error' : '';
    msg.textContent = `Saved ${Object.keys(changes).join(', ')}.${node.warnings?.length ? ` Warnings: ${node.warnings.join('; ')}` : ''}`;
  } catch (err) {
    if (err instanceof FieldError) return showFieldError(err.message, err.field);
    showFieldError(err.message);
  }
});

/** Run one action on the selected machine; its outcome (or the server's refusal) in the node's message line. */
function nodeAction(action) {
  const mac = ui.selected;
  return act('#node-message', () => action(mac));
}

$('#show-config').addEventListener('click', () => {
  const pre = $('#config-preview');
  if (!pre.hidden) {
    pre.hidden = true;
    return;
  }
  void nodeAction(async (mac) => {
    pre.textContent = await apiText(`/nodes/${encodeURIComponent(mac)}/config`);
    pre.hidden = false;
    return 'The machine config it would receive; keys and tokens masked.';
  });
});

$('#mark-installed').addEventListener('click', () => {
  if (!confirm(`Mark ${ui.selected} installed? Its next network boot goes to its own disk.`)) return;
  void nodeAction(async (mac) => {
    const node = await api('POST', `/nodes/${encodeURIComponent(mac)}/installed`);
    ui.nodes.set(node.mac, node);
    renderFleet();
    renderNode();
    return 'Marked installed: its next network boot goes to its own disk.';
  });
});

$('#delete-node').addEventListener('click', () => {
  if (!confirm(`Delete ${ui.selected}? Genesis forgets the machine (its events are kept); if it boots again it is discovered anew.`)) return;
  void nodeAction(async (mac) => {
    await api('DELETE', `/nodes/${encodeURIComponent(mac)}`);
    ui.nodes.delete(mac);
    closeNode();
    renderFleet();
  });
});

$('#register').addEventListener('submit', async (e) => {
  e.preventDefault();
  const mac = $('#new-mac').value.trim().toLowerCase().replace(/-/g, ':');
  const hostname = $('#new-hostname').value.trim();
  await act('#register-message', async () => {
    if (ui.nodes.has(mac)) throw new ApiError(`${mac} is already in the fleet`);
    const node = await api('PUT', `/nodes/${encodeURIComponent(mac)}`, { role: $('#new-role').value, ...(hostname ? { hostname } : {}) });
    ui.nodes.set(node.mac, node);
    renderFleet();
    $('#new-mac').value = '';
    $('#new-hostname').value = '';
    void select(node.mac);
    return `Added ${node.mac}: it gets its role the first time it boots.`;
  });
});

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
    ['Boot profile', n.profile || 'its role\'s or the cluster\'s'],
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
  const attention = attentionOf(n);
  if (attention) facts.unshift(['Needs attention', attention]);
  $('#node-facts').replaceChildren(...facts.flatMap(([k, v]) => [el('dt', k), el('dd', v, k === 'State' ? { id: 'node-state' } : k === 'Needs attention' ? { id: 'node-attention', class: 'attention' } : {})]));
  $('#mark-installed').hidden = n.state === 'installed' || n.role === 'unassigned';
  fillDetails(n, false);
  renderFleetOwnership(n);
  renderConflict(n);
}

/** The inputs of each node field, to show the ones the fleet file sets as read-only. */
const FLEET_FIELD_INPUTS = {
  role: ['role'],
  hostname: ['hostname'],
  installDisk: ['install-disk'],
  diskSelector: ['disk-selector'],
  labels: ['labels'],
  talosVersion: ['talos-version'],
  network: ['address', 'gateway', 'nameservers'],
  configPatch: ['patch'],
  bootstrap: ['bootstrap'],
  power: ['power-method-select', 'bmc-address', 'bmc-user', 'bmc-password-file'],
};

/** The file always wins: what it sets is read-only here, with where to change it. */
function renderFleetOwnership(n) {
  const owned = n.fleetFields || [];
  for (const [field, ids] of Object.entries(FLEET_FIELD_INPUTS)) {
    for (const id of ids) {
      const input = document.getElementById(id);
      input.disabled = owned.includes(field);
      if (input.disabled) input.title = `Set by the fleet file (${ui.fleetSource || 'fleet.path'}); change it there.`;
      else input.removeAttribute('title');
    }
  }
  const note = $('#fleet-note');
  note.hidden = owned.length === 0;
  note.textContent = owned.length ? `Set by the fleet file (${ui.fleetSource || 'fleet.path'}): ${owned.join(', ')}. Change ${owned.length > 1 ? 'them' : 'it'} there; the rest is editable here.` : '';
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

function confirmMachine(mac, ip) {
  return act('#node-message', async () => {
    await api('POST', `/nodes/${encodeURIComponent(mac)}/confirm`, { ip });
    return `Confirmed ${ip}: a new install window is open for it.`;
  });
}

async function renderTimeline() {
  const mac = ui.selected;
  const t = await api('GET', `/nodes/${encodeURIComponent(mac)}/timeline`);
  if (mac !== ui.selected) return;
  const items = t.steps.map((s) => {
    const gap = s.sincePreviousMs === null ? '' : ` +${(s.sincePreviousMs / 1000).toFixed(1)}s`;
    const li = el('li', `${new Date(s.at).toLocaleTimeString()} ${s.step}${gap}`);
    // The reason in the text itself: a phone has no hover.
    if (s.detail && (s.detail.error || s.detail.reason)) li.append(el('span', String(s.detail.error || s.detail.reason), { class: 'reason' }));
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
    if (!node && event.mac === ui.selected) closeNode();
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
  // Every page: the API gives at most 1000 at a time, with a cursor for the next.
  const nodes = [];
  for (let after; after !== null; ) {
    const page = await api('GET', `/nodes${after ? `?after=${encodeURIComponent(after)}` : ''}`);
    nodes.push(...page.nodes);
    after = page.next;
  }
  ui.nodes = new Map(nodes.map((n) => [n.mac, n]));
  renderFleet();
  renderNode();
  selectFromHash();
}

function showLogin(message) {
  ui.stream?.close();
  // Logged out, there is nothing live to show: the pill would read "connecting" to a server that is up.
  $('#live').hidden = true;
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
  $('#live').hidden = false;
  renderHeader();
  // Where the fleet file is, for the note on fields it owns (null: none in use).
  ui.fleetSource = (await api('GET', '/fleet').catch(() => null))?.source ?? null;
  await Promise.all([loadFleet(), renderCluster(), renderBackups(), renderLan().catch(() => {})]);
  connectStream();
  // "Last seen" ages; the cluster state moves without node events after the bootstrap.
  setInterval(() => {
    renderFleet();
    void renderCluster().catch(() => {});
    void renderBackups().catch(() => {});
    void renderLan().catch(() => {});
  }, 10_000);
}

$('#assign').addEventListener('submit', (e) => {
  e.preventDefault();
  const hostname = $('#hostname').value.trim();
  void nodeAction(async (mac) => {
    const node = await api('PATCH', `/nodes/${encodeURIComponent(mac)}`, { role: $('#role').value, hostname: hostname || null });
    ui.nodes.set(node.mac, node);
    renderFleet();
    renderNode();
    return `Saved: ${node.role}${node.hostname ? `, ${node.hostname}` : ''}.`;
  });
});

$('#reinstall').addEventListener('click', () => {
  if (!confirm(`Reinstall ${ui.selected}? Its next network boot installs Talos again, wiping the install disk.`)) return;
  void nodeAction(async (mac) => {
    await api('POST', `/nodes/${encodeURIComponent(mac)}/reinstall`);
    return 'Reinstall requested: power-cycle the machine (or reboot it) to start.';
  });
});

const POWER_CONFIRM = {
  off: 'Power off %s? Its workloads stop at once.',
  cycle: 'Power-cycle %s? It restarts without shutting down.',
  reboot: 'Reboot %s through Talos?',
  'reinstall-now': 'Reinstall %s now? Talos wipes its system disk and reboots into the installer.',
};

$('#power').addEventListener('click', (e) => {
  const action = e.target.closest('[data-power]')?.dataset.power;
  if (!action) return;
  if (POWER_CONFIRM[action] && !confirm(POWER_CONFIRM[action].replace('%s', ui.selected))) return;
  void nodeAction(async (mac) => {
    const path = `/nodes/${encodeURIComponent(mac)}`;
    const r = action === 'reinstall-now' ? (await api('POST', `${path}/reinstall`, { reset: true })).power : await api('POST', `${path}/power`, { action });
    return `${action === 'reinstall-now' ? 'Reinstall' : `Power ${action}`}: ${r.result}.`;
  });
});

$('#logout').addEventListener('click', async () => {
  await fetch('/ui/logout', { method: 'POST', headers: { 'x-genesis-csrf': ui.csrf || '' }, credentials: 'same-origin' });
  location.assign('/');
});

void start().catch((err) => {
  if (!(err instanceof ApiError)) console.error(err);
});
