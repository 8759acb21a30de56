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
// (RFC 9457) becomes an Error carrying the problem. Paths are relative to
// the page, so that it works behind a proxy that serves the service under
// a prefix (https://example.com/recall-service/).
async function api(method, path, body) {
  const init = { method, headers: { Accept: 'application/json' } };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  init.signal = AbortSignal.timeout(15000);
  let resp, text;
  try {
    resp = await fetch(path, init);
    text = await resp.text(); // the timeout covers the body too
  } catch (err) {
    const why = err.name === 'TimeoutError' ? 'within 15 s' : '(' + err.message + ')';
    throw Object.assign(new Error('the service did not answer ' + why), { problem: null });
  }
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { /* not JSON: reported below */ }
  if (!resp.ok) {
    // Not a problem document (a proxy's error page, say): its start only.
    const p = data && typeof data === 'object' ? data : { title: resp.statusText, detail: text.slice(0, 200) };
    const msg = (p.title || 'Error ' + resp.status) + (p.detail ? ': ' + p.detail : '');
    throw Object.assign(new Error(msg), { problem: p, status: resp.status });
  }
  if (data === null) throw Object.assign(new Error('the answer is not JSON'), { problem: null });
  return data;
}

function showBanner(msg, kind) {
  const b = $('#banner');
  // An alert is read out whenever its text is written: only new words.
  if (b.textContent !== msg) b.textContent = msg;
  b.className = 'banner ' + (kind || 'error');
  b.hidden = !msg;
}

// --- the model --------------------------------------------------------

// modelPending is true while GET /model is in flight or waiting to be
// retried: one load at a time, however many answers ask for one.
let modelPending = false;

async function loadModel() {
  if (modelPending) return;
  modelPending = true;
  const box = $('#model');
  try {
    const m = await api('GET', 'model');
    $('#model-version').textContent = m.version;
    $('#model-backend').textContent = m.backend;
    $('#model-objective').textContent = m.objective + ' · dim ' + m.dim;
    $('#model-size').textContent = m.movies.toLocaleString('en') + ' movies · ' + m.users.toLocaleString('en') + ' users';
    fillVocabularies(m.vocabularies || {});
    const recovered = box.dataset.state === 'error';
    box.dataset.state = 'done';
    showBanner('');
    modelPending = false;
    if (recovered) retryViews();
  } catch (err) {
    box.dataset.state = 'error';
    $('#model-version').textContent = 'none';
    showBanner('No model to explore yet — ' + err.message + '. Retrying…', 'warn');
    // The service's Retry-After for "not ready" is 5 s.
    setTimeout(() => { modelPending = false; loadModel(); }, 5000);
  }
}

// retryViews asks again, once a model is there, what was asked while
// there was none: the view the location names, the title searches typed,
// and a recall that the service was not ready for.
function retryViews() {
  route();
  for (const q of ['#recent-q', '#similar-q']) {
    if ($(q).value.trim()) $(q).dispatchEvent(new Event('input'));
  }
  if ($('#results').dataset.problem === 'urn:towerrecall:problem:not-ready' && shown.body) recall(shown.body);
}

// fillVocabularies (re)builds the form's choices from /model's
// vocabularies, keeping what is chosen where the model still has it.
function fillVocabularies(v) {
  const occ = $('#occupation');
  const chosen = occ.value;
  occ.replaceChildren(occ.options[0], ...(v.occupation || []).map((o) => el('option', { value: o }, o)));
  occ.value = (v.occupation || []).includes(chosen) ? chosen : '';
  $('#age-buckets').replaceChildren(...(v.age || []).map(Number).filter((n) => n > 0).sort((a, b) => a - b)
    .map((a) => el('option', { value: String(a) })));
  const checked = new Set([...document.querySelectorAll('#genre-list input:checked')].map((c) => c.value));
  $('#genre-list').replaceChildren(...(v.genres || []).map((g) => el('label', { class: 'check' },
    el('input', { type: 'checkbox', name: 'genre', value: g, checked: checked.has(g) }), ' ' + g)));
}

// followModel reloads the header and the form's choices when an answer
// comes from another model than the one shown (the service reloaded).
function followModel(version) {
  if (version !== $('#model-version').textContent) loadModel();
}

// --- movie search (shared by the picker and the similar view) ----------

// searchBox makes input search titles into hits; status (a live region)
// tells screen readers what the hits are while the focus stays in input.
function searchBox(input, hits, status, onPick) {
  let timer = 0;
  let seq = 0;
  const pick = (m) => { status.textContent = ''; onPick(m); };
  // search shows the hits for the input's text now and returns the top
  // one (undefined when a later search superseded it or nothing matched).
  const search = async () => {
    clearTimeout(timer);
    const q = input.value.trim();
    const mine = ++seq;
    if (!q) { hits.replaceChildren(); status.textContent = ''; return undefined; }
    try {
      const res = await api('GET', 'movies?' + new URLSearchParams({ q, limit: '8' }));
      if (mine !== seq) return undefined; // a later keystroke has its own answer
      hits.replaceChildren(...res.movies.map((m) => el('li', {},
        el('button', { type: 'button', class: 'hit', dataset: { movieId: String(m.movie_id) }, onclick: () => pick(m) },
          m.title, el('span', { class: 'sub' }, ' · ' + m.genres.join(', '))))));
      const n = res.movies.length;
      if (n === 0) hits.replaceChildren(el('li', { class: 'sub' }, 'no title contains “' + q + '”'));
      else if (res.total > n) hits.append(el('li', { class: 'sub' }, (res.total - n) + ' more; type more of the title'));
      status.textContent = n === 0 ? 'no title contains “' + q + '”'
        : (res.total > n ? n + ' of ' + res.total : String(n)) + (res.total === 1 ? ' movie matches' : ' movies match') + '; Enter picks the first';
      return res.movies[0];
    } catch (err) {
      if (mine === seq) {
        hits.replaceChildren(el('li', { class: 'sub error' }, err.message));
        status.textContent = err.message;
      }
      return undefined;
    }
  };
  // Enter picks the top hit for the text as it is now (searching first if
  // the hits shown are for older text). Inside the recall form it would
  // also submit the form (without the movie): keypress is where browsers do.
  input.addEventListener('keydown', async (ev) => {
    // The Enter that ends an input method's composition is not a pick.
    if (ev.key !== 'Enter' || ev.isComposing || ev.keyCode === 229) return; // 229: Safari's composing Enter
    ev.preventDefault();
    const top = await search();
    if (top) pick(top);
  });
  input.addEventListener('keypress', (ev) => { if (ev.key === 'Enter') ev.preventDefault(); });
  input.addEventListener('input', () => {
    clearTimeout(timer);
    timer = setTimeout(search, 200);
  });
}

// --- recall view --------------------------------------------------------

const picked = new Map(); // movie id → movie, in pick order

function renderPicked() {
  $('#recent-picked').replaceChildren(...[...picked.values()].map((m, i) => el('li', { class: 'chip' },
    m.title,
    el('button', { type: 'button', class: 'x', 'aria-label': 'Remove ' + m.title, onclick: () => unpick(m.movie_id, i) }, '×'))));
}

// unpick removes the i-th picked movie. The list is rebuilt, so the focus
// (on the removed button) moves to the next movie's button, else the
// previous one's, else the search box, never to the start of the page.
function unpick(id, i) {
  picked.delete(id);
  renderPicked();
  const xs = document.querySelectorAll('#recent-picked button.x');
  (xs[Math.min(i, xs.length - 1)] || $('#recent-q')).focus();
}

// intField reads a whole-number input: undefined when empty; a value the
// browser could not parse (it reports those as empty) or that is not
// digits alone (1e3, 2.5) is an error naming the input.
function intField(sel, name) {
  const input = $(sel);
  const v = input.value.trim();
  if (input.validity.badInput || (v && !/^\d+$/.test(v))) {
    throw Object.assign(new Error(name + ' must be a whole number'), { problem: { field: sel } });
  }
  // Past 2^53 a number is not sent as typed (JSON has 1e+23 for 23 nines).
  if (v && !Number.isSafeInteger(Number(v))) {
    throw Object.assign(new Error(name + ' is too large'), { problem: { field: sel } });
  }
  return v ? Number(v) : undefined;
}

// recallBody reads the form into a /recall body, leaving out what is empty.
function recallBody() {
  const user = {};
  const gender = $('#gender').value;
  if (gender) user.gender = gender;
  const age = intField('#age', 'Age');
  if (age !== undefined) user.age = age;
  const occ = $('#occupation').value;
  if (occ) user.occupation = occ;
  const zip = $('#zip').value.trim();
  if (zip) user.zip = zip;
  const uid = intField('#user-id', 'Known user id');
  if (uid !== undefined) user.user_id = uid;
  if (picked.size) user.recent_movie_ids = [...picked.keys()].reverse(); // newest first, as the API reads them

  const body = { user };
  const k = intField('#k', 'How many');
  if (k !== undefined) body.k = k;
  const genres = [...document.querySelectorAll('#genre-list input:checked')].map((c) => c.value);
  if (genres.length) body.genres = genres;
  if (!$('#exclude-seen').checked) body.exclude_seen = false;
  return body;
}

// fieldInputs maps a problem's field to the input to mark.
const fieldInputs = {
  'user.gender': '#gender', 'user.age': '#age', 'user.occupation': '#occupation', 'user.zip': '#zip',
  'user.user_id': '#user-id', 'user.recent_movie_ids': '#recent-q', k: '#k', genres: '#genre-list input',
  '#age': '#age', '#user-id': '#user-id', '#k': '#k', // intField's own errors
};

function clearInvalid() {
  for (const e of document.querySelectorAll('[aria-invalid]')) {
    e.removeAttribute('aria-invalid');
    e.removeAttribute('aria-describedby');
  }
}

// latest counts the requests of each view: an answer to a request that a
// later one superseded is dropped, whichever arrives first.
const latest = { recall: 0, similar: 0 };

// shown is the recall view's list: the request of its first page, the
// model that answered it, and the items of every page shown so far
// ("More" appends the next page).
const shown = { body: null, version: '', restarted: '', items: [] };

function submitRecall(ev) {
  ev.preventDefault();
  clearInvalid();
  let body;
  try {
    body = recallBody();
  } catch (err) {
    ++latest.recall;
    $('#results-more').hidden = true;
    failView($('#results'), $('#results-table'), $('#results-meta'), err, fieldInputs);
    return;
  }
  shown.body = body;
  shown.items = [];
  shown.restarted = '';
  recall(body);
}

// recall sends body and shows its answer after the items already shown.
async function recall(body) {
  const mine = ++latest.recall;
  const box = $('#results');
  $('#recall-request').textContent = 'POST /recall\n' + JSON.stringify(body, null, 2);
  box.dataset.state = 'loading';
  // "More" is hidden while its page loads, which drops the focus on it:
  // the focus then goes to the first movie of the new page.
  const moreFocused = document.activeElement === $('#results-more');
  $('#results-more').hidden = true;
  $('#results-more-error').hidden = true;
  $('#results-meta').textContent = 'Recalling…';
  const t0 = performance.now();
  try {
    const res = await api('POST', 'recall', body);
    if (mine !== latest.recall) return;
    const ms = performance.now() - t0;
    followModel(res.model_version);
    if (shown.items.length && res.model_version !== shown.version) {
      // The service loaded another model since the first page: its pages
      // do not continue that ranking (openapi.yaml, offset), so the list
      // starts again from the new model's first page.
      shown.items = [];
      shown.restarted = shown.version;
      recall(shown.body);
      return;
    }
    shown.version = res.model_version;
    const before = shown.items.length;
    shown.items = shown.items.concat(res.items);
    fillTable($('#results-table'), shown.items);
    if (before === 0) reveal($('#results-meta'));
    const first = $('#results-table').tBodies[0].rows[before];
    if (moreFocused && first) first.querySelector('.title a').focus();
    let who = res.known_user ? 'known (trained on)' : 'cold start';
    if (!res.known_user && body.user.user_id !== undefined) who += ' (user #' + body.user.user_id + ' is not in the training data)';
    const pairs = [
      ['model', res.model_version], ['backend', res.backend], ['user', who],
      ['movies', shown.items.length ? String(shown.items.length) : 'none: no movie passes the filters'], ['round trip', ms.toFixed(1) + ' ms'],
    ];
    if (shown.restarted) pairs.push(['list started again', 'model ' + shown.restarted + ' was replaced']);
    shown.restarted = '';
    const h = res.user && res.user.history_movies;
    if (h) pairs.push(['history the tower read', h + (h === 1 ? ' movie' : ' movies')]);
    const unknown = (res.user && res.user.unknown_recent_movie_ids) || [];
    if (unknown.length) pairs.push(['not in the catalogue, not used', unknown.map((id) => '#' + id).join(', ')]);
    $('#results-meta').replaceChildren(...metaLine(pairs));
    const more = $('#results-more');
    more.hidden = !res.next_offset;
    more.onclick = () => recall({ ...shown.body, offset: res.next_offset });
    box.dataset.state = 'done';
    box.dataset.problem = '';
  } catch (err) {
    if (mine !== latest.recall) return;
    if (shown.items.length) {
      // A later page failed: the movies shown stay, and More tries again.
      // The error is said at the top and beside More, where the person
      // who pressed it is looking (the top may be far above the screen).
      const msg = 'The next movies did not come: ' + err.message;
      $('#results-meta').replaceChildren(el('span', { class: 'error' }, msg));
      $('#results-more-error').textContent = msg;
      $('#results-more-error').hidden = false;
      $('#results-more').hidden = false;
      if (moreFocused) $('#results-more').focus();
      box.dataset.state = 'error';
      return;
    }
    failView(box, $('#results-table'), $('#results-meta'), err, fieldInputs);
  }
}

// reveal scrolls a view's result panel into sight when its result line is
// out of it: on a wide screen the panel is at the top of its column, and a
// form submitted from its button (scrolled down to it) got a short list or
// an error above the screen, so nothing seemed to happen.
function reveal(meta) {
  const r = meta.getBoundingClientRect();
  if (r.top < 0 || r.bottom > window.innerHeight) meta.closest('.panel').scrollIntoView({ block: 'nearest' });
}

function metaLine(pairs) {
  const out = [];
  for (const [k, v] of pairs) out.push(el('span', { class: 'kv' }, el('span', { class: 'k' }, k), ' ', el('strong', {}, v)));
  return out;
}

// failView shows err in a view; inputs maps a problem's field to the
// view's input to mark.
function failView(box, table, meta, err, inputs) {
  table.hidden = true;
  meta.replaceChildren(el('span', { class: 'error' }, err.message));
  reveal(meta); // then the field, which scrolls to it if both do not fit
  const f = err.problem && err.problem.field;
  const input = f && inputs[f] && $(inputs[f]);
  if (input) {
    input.setAttribute('aria-invalid', 'true');
    input.setAttribute('aria-describedby', meta.id);
    input.focus();
  }
  box.dataset.state = 'error';
  box.dataset.problem = (err.problem && err.problem.type) || '';
}

// fillTable renders recalled or similar items: rank, title (a link to the
// movie's neighbours), year, genres and score.
function fillTable(table, items) {
  // The bars span the scores shown (all may be negative).
  const scores = items.map((it) => it.score);
  const lo = Math.min(...scores);
  const hi = Math.max(...scores) > lo ? Math.max(...scores) : lo + 1;
  table.tBodies[0].replaceChildren(...items.map((it, i) => el('tr', { dataset: { movieId: String(it.movie_id) } },
    el('td', { class: 'rank' }, String(i + 1)),
    el('td', { class: 'title' }, el('a', { href: '#similar/' + it.movie_id, title: 'Movies near this one' }, it.title)),
    el('td', { class: 'year' }, it.year ? String(it.year) : '–'),
    el('td', { class: 'genres' }, ...it.genres.map((g) => el('span', { class: 'tag' }, g))),
    el('td', { class: 'num score' }, el('meter', { min: lo, max: hi, value: it.score, 'aria-hidden': 'true' }), ' ', it.score.toFixed(4)))));
  table.hidden = items.length === 0;
}

// --- similar view -------------------------------------------------------

async function showSimilar(id) {
  clearInvalid();
  const mine = ++latest.similar;
  const box = $('#similar-results');
  let k;
  try {
    k = String(intField('#similar-k', 'How many') ?? 10);
  } catch (err) {
    failView(box, $('#similar-table'), $('#similar-meta'), err, { '#similar-k': '#similar-k' });
    return;
  }
  $('#similar-id').value = /^\d+$/.test(id) ? id : ''; // a number input cannot hold anything else
  box.dataset.state = 'loading';
  $('#similar-meta').textContent = 'Searching…';
  try {
    const res = await api('GET', 'movies/' + encodeURIComponent(id) + '/similar?' + new URLSearchParams({ k }));
    if (mine !== latest.similar) return;
    followModel(res.model_version);
    const m = res.movie;
    $('#similar-title').textContent = 'Nearest to ' + m.title;
    fillTable($('#similar-table'), res.items);
    $('#similar-meta').replaceChildren(...metaLine([
      ['movie', '#' + m.movie_id + (m.genres.length ? ' · ' + m.genres.join(', ') : '')],
      ['model', res.model_version], ['index', 'exact'], ['movies', String(res.items.length)],
    ]));
    box.dataset.state = 'done';
    // Following a title link removed (or hid) the focused link: the focus
    // goes to the new list's heading, not back to the top of the page.
    if (document.activeElement === document.body) $('#similar-title').focus();
  } catch (err) {
    if (mine !== latest.similar) return;
    $('#similar-title').textContent = 'Nearest movies';
    failView(box, $('#similar-table'), $('#similar-meta'), err, { movie_id: '#similar-id', k: '#similar-k' });
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
  // Only the chosen tab is a Tab stop; the arrow keys reach the other.
  $('#tab-recall').tabIndex = similar ? -1 : 0;
  $('#tab-similar').tabIndex = similar ? 0 : -1;
  if (similar && arg) showSimilar(arg);
}

function main() {
  $('#recall-form').addEventListener('submit', submitRecall);
  // openSimilar shows a movie's neighbours; the same movie again (a new k)
  // fires no hashchange, so it is shown directly.
  const openSimilar = (id) => {
    if (location.hash === '#similar/' + id) showSimilar(id);
    else location.hash = '#similar/' + id;
  };
  $('#similar-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const id = $('#similar-id').value.trim();
    if (!id) {
      // Said in words on the field, in place of whatever the view showed.
      clearInvalid();
      ++latest.similar;
      $('#similar-title').textContent = 'Nearest movies';
      const err = Object.assign(new Error('Give a movie id (a whole number), or find a movie by title'), { problem: { field: 'movie_id' } });
      failView($('#similar-results'), $('#similar-table'), $('#similar-meta'), err, { movie_id: '#similar-id' });
      return;
    }
    openSimilar(id);
  });
  searchBox($('#recent-q'), $('#recent-hits'), $('#recent-status'), (m) => {
    picked.set(m.movie_id, m);
    renderPicked();
    $('#recent-q').value = '';
    $('#recent-hits').replaceChildren();
    $('#recent-q').focus(); // the hit picked is gone: the focus goes back to the box
  });
  searchBox($('#similar-q'), $('#similar-hits'), $('#similar-status'), (m) => {
    $('#similar-hits').replaceChildren();
    $('#similar-q').focus();
    openSimilar(String(m.movie_id));
  });
  // The tabs' keys (the ARIA tabs pattern): an arrow, Home or End moves
  // to a tab and chooses it.
  $('.tabs').addEventListener('keydown', (ev) => {
    const tabs = [...document.querySelectorAll('.tabs [role="tab"]')];
    const at = tabs.indexOf(document.activeElement);
    const to = { ArrowRight: at + 1, ArrowLeft: at - 1, Home: 0, End: tabs.length - 1 }[ev.key];
    if (at < 0 || to === undefined) return;
    ev.preventDefault();
    const tab = tabs[(to + tabs.length) % tabs.length];
    location.hash = tab.getAttribute('href');
    tab.focus();
  });
  window.addEventListener('hashchange', route);
  route();
  loadModel();
}

main();
