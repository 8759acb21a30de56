// towerrecall explorer: try the model in a browser. Plain JavaScript, no
// build step and no third-party code; it calls only this service's API
// (GET /model, POST /recall, GET /movies, GET /movies/{id}/similar) and
// writes every value into the page as text, never as HTML.
'use strict';

const $ = (sel) => document.querySelector(sel);

// el builds an element with text or children; attributes are set as
// properties or attributes, never as HTML.
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === 'class') e.className = v;
    else if (k === 'dataset') Object.assign(e.dataset, v);
    else if (k in e && typeof v !== 'string') e[k] = v;
    else e.setAttribute(k, v);
  }
  for (const c of children) {
    if (c !== null && c !== undefined) e.append(c instanceof Node ? c : String(c));
  }
  return e;
}

// api calls the service and returns the decoded body; a problem answer
// (RFC 9457) becomes an Error carrying the problem.
async function api(method, path, body) {
  const init = { method, headers: { Accept: 'application/json' } };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let resp;
  try {
    resp = await fetch(path, init);
  } catch (err) {
    throw Object.assign(new Error('the service did not answer (' + err.message + ')'), { problem: null });
  }
  const text = await resp.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { /* not JSON: reported below */ }
  if (!resp.ok) {
    const p = data && typeof data === 'object' ? data : { title: resp.statusText, detail: text };
    const msg = (p.title || 'Error ' + resp.status) + (p.detail ? ': ' + p.detail : '');
    throw Object.assign(new Error(msg), { problem: p, status: resp.status });
  }
  if (data === null) throw Object.assign(new Error('the answer is not JSON'), { problem: null });
  return data;
}

function showBanner(msg, kind) {
  const b = $('#banner');
  b.textContent = msg;
  b.className = 'banner ' + (kind || 'error');
  b.hidden = !msg;
}

// --- the model --------------------------------------------------------

async function loadModel() {
  const box = $('#model');
  try {
    const m = await api('GET', '/model');
    $('#model-version').textContent = m.version;
    $('#model-backend').textContent = m.backend;
    $('#model-objective').textContent = m.objective + ' · dim ' + m.dim;
    $('#model-size').textContent = m.movies.toLocaleString('en') + ' movies · ' + m.users.toLocaleString('en') + ' users';
    fillVocabularies(m.vocabularies || {});
    box.dataset.state = 'done';
    showBanner('');
  } catch (err) {
    box.dataset.state = 'error';
    $('#model-version').textContent = 'none';
    showBanner('No model to explore yet — ' + err.message + '. Retrying…', 'warn');
    setTimeout(loadModel, 3000);
  }
}

function fillVocabularies(v) {
  const occ = $('#occupation');
  for (const o of v.occupation || []) occ.append(el('option', { value: o }, o));
  const ages = $('#age-buckets');
  for (const a of (v.age || []).map(Number).filter((n) => n > 0).sort((a, b) => a - b)) {
    ages.append(el('option', { value: String(a) }));
  }
  const list = $('#genre-list');
  for (const g of v.genres || []) {
    list.append(el('label', { class: 'check' }, el('input', { type: 'checkbox', name: 'genre', value: g }), ' ' + g));
  }
}

// --- movie search (shared by the picker and the similar view) ----------

function searchBox(input, hits, onPick) {
  let timer = 0;
  let seq = 0;
  input.addEventListener('input', () => {
    clearTimeout(timer);
    timer = setTimeout(async () => {
      const q = input.value.trim();
      const mine = ++seq;
      if (!q) { hits.replaceChildren(); return; }
      try {
        const res = await api('GET', '/movies?' + new URLSearchParams({ q, limit: '8' }));
        if (mine !== seq) return; // a later keystroke has its own answer
        hits.replaceChildren(...res.movies.map((m) => el('li', {},
          el('button', { type: 'button', class: 'hit', dataset: { movieId: String(m.movie_id) }, onclick: () => onPick(m) },
            m.title, el('span', { class: 'sub' }, ' · ' + m.genres.join(', '))))));
        if (res.movies.length === 0) hits.replaceChildren(el('li', { class: 'sub' }, 'no title contains “' + q + '”'));
        else if (res.total > res.movies.length) hits.append(el('li', { class: 'sub' }, (res.total - res.movies.length) + ' more; type more of the title'));
      } catch (err) {
        if (mine === seq) hits.replaceChildren(el('li', { class: 'sub error' }, err.message));
      }
    }, 200);
  });
}

// --- recall view --------------------------------------------------------

const picked = new Map(); // movie id → movie, in pick order

function renderPicked() {
  $('#recent-picked').replaceChildren(...[...picked.values()].map((m) => el('li', { class: 'chip' },
    m.title,
    el('button', { type: 'button', class: 'x', 'aria-label': 'Remove ' + m.title, onclick: () => { picked.delete(m.movie_id); renderPicked(); } }, '×'))));
}

// recallBody reads the form into a /recall body, leaving out what is empty.
function recallBody() {
  const user = {};
  const gender = $('#gender').value;
  if (gender) user.gender = gender;
  const age = $('#age').value.trim();
  if (age) user.age = Number(age);
  const occ = $('#occupation').value;
  if (occ) user.occupation = occ;
  const zip = $('#zip').value.trim();
  if (zip) user.zip = zip;
  const uid = $('#user-id').value.trim();
  if (uid) user.user_id = Number(uid);
  if (picked.size) user.recent_movie_ids = [...picked.keys()];

  const body = { user };
  const k = $('#k').value.trim();
  if (k) body.k = Number(k);
  const genres = [...document.querySelectorAll('#genre-list input:checked')].map((c) => c.value);
  if (genres.length) body.genres = genres;
  if (!$('#exclude-seen').checked) body.exclude_seen = false;
  return body;
}

// fieldInputs maps a problem's field to the input to mark.
const fieldInputs = {
  'user.gender': '#gender', 'user.age': '#age', 'user.occupation': '#occupation', 'user.zip': '#zip',
  'user.user_id': '#user-id', k: '#k', genres: '#genres', exclude_movie_ids: '#recent-q',
};

function clearInvalid() {
  for (const e of document.querySelectorAll('[aria-invalid]')) e.removeAttribute('aria-invalid');
}

async function submitRecall(ev) {
  ev.preventDefault();
  clearInvalid();
  const box = $('#results');
  const body = recallBody();
  $('#recall-request').textContent = 'POST /recall\n' + JSON.stringify(body, null, 2);
  box.dataset.state = 'loading';
  $('#results-meta').textContent = 'Recalling…';
  const t0 = performance.now();
  try {
    const res = await api('POST', '/recall', body);
    const ms = performance.now() - t0;
    fillTable($('#results-table'), res.items);
    $('#results-meta').replaceChildren(...metaLine([
      ['model', res.model_version], ['backend', res.backend],
      ['user', res.known_user ? 'known (trained on)' : 'cold start'],
      ['movies', String(res.items.length)], ['round trip', ms.toFixed(1) + ' ms'],
    ]));
    box.dataset.state = 'done';
  } catch (err) {
    failView(box, $('#results-table'), $('#results-meta'), err);
  }
}

function metaLine(pairs) {
  const out = [];
  for (const [k, v] of pairs) out.push(el('span', { class: 'kv' }, el('span', { class: 'k' }, k), ' ', el('strong', {}, v)));
  return out;
}

function failView(box, table, meta, err) {
  table.hidden = true;
  meta.replaceChildren(el('span', { class: 'error' }, err.message));
  const f = err.problem && err.problem.field;
  if (f && fieldInputs[f]) $(fieldInputs[f]).setAttribute('aria-invalid', 'true');
  box.dataset.state = 'error';
}

// fillTable renders recalled or similar items: rank, title (a link to the
// movie's neighbours), year, genres and score.
function fillTable(table, items) {
  const scores = items.map((it) => it.score);
  const lo = Math.min(...scores, 0);
  const hi = Math.max(...scores, 0);
  table.tBodies[0].replaceChildren(...items.map((it, i) => el('tr', { dataset: { movieId: String(it.movie_id) } },
    el('td', { class: 'rank' }, String(i + 1)),
    el('td', { class: 'title' }, el('a', { href: '#similar/' + it.movie_id, title: 'Movies near this one' }, it.title)),
    el('td', { class: 'year' }, it.year ? String(it.year) : '–'),
    el('td', { class: 'genres' }, ...it.genres.map((g) => el('span', { class: 'tag' }, g))),
    el('td', { class: 'num score' }, el('meter', { min: lo, max: hi || 1, value: it.score, 'aria-hidden': 'true' }), ' ', it.score.toFixed(4)))));
  table.hidden = items.length === 0;
}

// --- similar view -------------------------------------------------------

async function showSimilar(id) {
  clearInvalid();
  const box = $('#similar');
  const k = $('#similar-k').value.trim() || '10';
  $('#similar-id').value = String(id);
  box.dataset.state = 'loading';
  $('#similar-meta').textContent = 'Searching…';
  try {
    const res = await api('GET', '/movies/' + encodeURIComponent(id) + '/similar?' + new URLSearchParams({ k }));
    const m = res.movie;
    $('#similar-title').textContent = 'Nearest to ' + m.title;
    fillTable($('#similar-table'), res.items);
    $('#similar-meta').replaceChildren(...metaLine([
      ['movie', '#' + m.movie_id + (m.genres.length ? ' · ' + m.genres.join(', ') : '')],
      ['model', res.model_version], ['index', 'exact'], ['movies', String(res.items.length)],
    ]));
    box.dataset.state = 'done';
  } catch (err) {
    $('#similar-title').textContent = 'Nearest movies';
    failView(box, $('#similar-table'), $('#similar-meta'), err);
    const f = err.problem && err.problem.field;
    if (f === 'movie_id') $('#similar-id').setAttribute('aria-invalid', 'true');
    if (f === 'k') $('#similar-k').setAttribute('aria-invalid', 'true');
  }
}

// --- views and routing ----------------------------------------------------

// route shows the view the location's hash names: #recall, #similar or
// #similar/<movie id>.
function route() {
  const [view, arg] = location.hash.replace(/^#/, '').split('/');
  const similar = view === 'similar';
  $('#view-recall').hidden = similar;
  $('#view-similar').hidden = !similar;
  $('#tab-recall').setAttribute('aria-selected', String(!similar));
  $('#tab-similar').setAttribute('aria-selected', String(similar));
  if (similar && arg) showSimilar(arg);
}

function main() {
  $('#recall-form').addEventListener('submit', submitRecall);
  $('#similar-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const id = $('#similar-id').value.trim();
    if (!id) { $('#similar-id').setAttribute('aria-invalid', 'true'); return; }
    if (location.hash === '#similar/' + id) showSimilar(id);
    else location.hash = '#similar/' + id;
  });
  searchBox($('#recent-q'), $('#recent-hits'), (m) => {
    picked.set(m.movie_id, m);
    renderPicked();
    $('#recent-q').value = '';
    $('#recent-hits').replaceChildren();
  });
  searchBox($('#similar-q'), $('#similar-hits'), (m) => {
    $('#similar-hits').replaceChildren();
    location.hash = '#similar/' + m.movie_id;
  });
  window.addEventListener('hashchange', route);
  route();
  loadModel();
}

main();
