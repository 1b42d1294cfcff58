// Shared by both pages: the API call (with the bearer token from localStorage), small DOM
// builders that only ever set text (never HTML, so rollout data cannot inject markup), the
// weight bar and phase badge, and a polling loop.

const TOKEN_KEY = 'clustershift.token';

export class ApiError extends Error {
  constructor(message, status, code) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export function storedToken() {
  try {
    return localStorage.getItem(TOKEN_KEY) || '';
  } catch {
    return '';
  }
}

// The last answer per path with its ETag: a poll sends If-None-Match, and a 304 (nothing has
// changed) reuses that answer instead of downloading the whole list again.
const answers = new Map();

export async function api(path, options = {}) {
  const method = options.method || 'GET';
  const headers = { accept: 'application/json' };
  if (options.body !== undefined) headers['content-type'] = 'application/json';
  const token = storedToken();
  if (token) headers.authorization = `Bearer ${token}`;
  const previous = method === 'GET' ? answers.get(path) : undefined;
  if (previous) headers['if-none-match'] = previous.etag;
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
      cache: 'no-store',
      signal: AbortSignal.timeout(10000),
    });
  } catch (error) {
    throw new ApiError(`cannot reach the clustershift API: ${error.message}`, 0, 'CS_UNREACHABLE');
  }
  if (response.status === 304 && previous) return previous.data;
  const data = await response.json().catch(() => undefined);
  if (!response.ok) {
    const hint = response.status === 401 ? ' (set an API token above)' : '';
    throw new ApiError(
      `${data?.message || `HTTP ${response.status}`}${hint}`,
      response.status,
      data?.code || 'CS_HTTP_ERROR',
    );
  }
  const etag = response.headers.get('etag');
  if (method === 'GET' && etag) answers.set(path, { etag, data });
  else answers.delete(path);
  return data;
}

/** el('a', { class: 'card', href }, child, 'text', ...): text children become text nodes. */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === 'class') node.className = value;
    else if (name === 'text') node.textContent = value;
    else if (name.startsWith('data-')) node.dataset[name.slice(5)] = value;
    else node.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function phaseBadge(phase) {
  return el('span', { class: `phase phase-${phase.toLowerCase()}`, text: phase, 'data-phase': phase });
}

export function verdictText(verdict) {
  return el('span', { class: `verdict verdict-${verdict || 'none'}`, text: verdict || '–' });
}

export function weightBar(weight, pendingWeight) {
  const fill = el('span', { class: 'bar-fill' });
  fill.style.width = `${Math.max(0, Math.min(100, weight))}%`;
  const bar = el('span', { class: 'bar', role: 'img', 'aria-label': `${weight}% to the new cluster` }, fill);
  if (pendingWeight !== undefined) {
    const next = el('span', { class: 'bar-pending' });
    next.style.left = `${weight}%`;
    next.style.width = `${Math.max(0, pendingWeight - weight)}%`;
    bar.append(next);
  }
  const label = pendingWeight !== undefined ? `${weight}% → ${pendingWeight}%` : `${weight}%`;
  return el('span', { class: 'weight' }, bar, el('span', { class: 'weight-label', text: label }));
}

export function duration(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, '0')}s`;
  const h = Math.floor(m / 60);
  return `${h}h${String(m % 60).padStart(2, '0')}m`;
}

export function clockTime(iso) {
  return new Date(iso).toLocaleTimeString([], { hour12: false });
}

export const TERMINAL = new Set(['Succeeded', 'RolledBack', 'Failed']);

/** Shows or clears the page's error banner. */
export function showError(message) {
  const banner = document.getElementById('error');
  if (!banner) return;
  banner.textContent = message || '';
  banner.hidden = !message;
}

/** The token form in the header: saves to localStorage and refreshes at once. */
export function setupTokenForm(onChange) {
  const form = document.getElementById('token-form');
  const input = document.getElementById('token');
  const state = document.getElementById('token-state');
  if (!form || !input) return;
  const show = () => {
    if (state) state.textContent = storedToken() ? 'token set' : 'no token';
  };
  input.value = storedToken();
  show();
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    try {
      if (input.value.trim()) localStorage.setItem(TOKEN_KEY, input.value.trim());
      else localStorage.removeItem(TOKEN_KEY);
    } catch {
      // private mode without storage: the token lasts for this page only
    }
    show();
    onChange();
  });
}

/** Calls `refresh` now and then every `intervalMs` after each call ends, never overlapping. */
export function poll(refresh, intervalMs) {
  let timer;
  const run = async () => {
    clearTimeout(timer);
    try {
      await refresh();
      showError('');
    } catch (error) {
      showError(error.message);
    }
    timer = setTimeout(run, intervalMs);
  };
  run();
  return run;
}

/** Where a rollout is defined: `WorkloadMigration ns/name` (change it with kubectl) or the file. */
export function sourceText(source) {
  if (!source) return '–';
  return source.kind === 'WorkloadMigration'
    ? `WorkloadMigration ${source.namespace}/${source.name}`
    : `config file ${source.file}`;
}
