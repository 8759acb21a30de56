// A typed client of the towerrecall API, written as a frontend developer
// would write it against the types openapi-typescript generates from
// openapi.yaml (gen/api.d.ts): tsc checks every request it builds and every
// response member it reads against the contract. run.sh then runs it with
// node's test runner against the real service behind Prism's validating
// proxy, which answers 500 with an sl-violations header when a response
// breaks the contract (requests are passed on unchecked, so the service's
// own 4xx problems are checked too).

import { test } from "node:test";
import assert from "node:assert/strict";
import type { components } from "./gen/api.js";

type Schemas = components["schemas"];

const base = process.env.CONTRACT_BASE;
const token = process.env.CONTRACT_TOKEN;
if (!base || !token) {
  throw new Error("CONTRACT_BASE (the proxy's URL) and CONTRACT_TOKEN (the catalogue token) must be set; run.sh sets them");
}

interface Answer<T> {
  status: number;
  type: string;
  body: T;
}

// call sends one request through the proxy and fails the test if the proxy
// reports a contract violation.
async function call<T>(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Answer<T>> {
  const init: RequestInit = { method, headers };
  if (body !== undefined) {
    init.body = typeof body === "string" ? body : JSON.stringify(body);
    init.headers = { "Content-Type": "application/json", ...headers };
  }
  const res = await fetch(base + path, init);
  const text = await res.text();
  const violations = res.headers.get("sl-violations");
  assert.equal(violations, null, `${method} ${path}: the answer breaks openapi.yaml: ${violations} ${text}`);
  const type = res.headers.get("content-type") ?? "";
  return { status: res.status, type, body: (type.includes("json") ? JSON.parse(text) : text) as T };
}

function problem(a: Answer<unknown>, status: number, field?: string): Schemas["Problem"] {
  assert.equal(a.status, status, JSON.stringify(a.body));
  assert.match(a.type, /^application\/problem\+json/);
  const p = a.body as Schemas["Problem"];
  assert.equal(p.status, status);
  if (field !== undefined) {
    assert.equal(p.field, field);
  }
  return p;
}

test("liveness, readiness and the model", async () => {
  const h = await call<Schemas["Health"]>("GET", "/healthz");
  assert.equal(h.body.status, "ok");
  const r = await call<Schemas["Ready"]>("GET", "/readyz");
  assert.equal(r.status, 200);
  const m = await call<Schemas["ModelInfo"]>("GET", "/model");
  assert.equal(m.status, 200);
  assert.ok(m.body.movies > 0 && m.body.dim >= 8, JSON.stringify(m.body));
  const metrics = await call<string>("GET", "/metrics");
  assert.match(metrics.body, /towerrecall_http_requests_total/);
});

test("the explorer page and its assets", async () => {
  const page = await call<string>("GET", "/");
  assert.equal(page.status, 200);
  assert.match(page.type, /^text\/html/);
  for (const [file, type] of [["app.js", /^text\/javascript/], ["app.css", /^text\/css/], ["favicon.svg", /^image\/svg\+xml/]] as const) {
    const a = await call<string>("GET", `/explorer/${file}`);
    assert.equal(a.status, 200, file);
    assert.match(a.type, type, file);
  }
  problem(await call("GET", "/explorer/missing.js"), 404);
});

test("recall: features, a known user, recent movies, paging", async () => {
  const byFeatures: Schemas["RecallRequest"] = { user: { gender: "F", age: 25, occupation: "programmer" }, k: 5 };
  const a = await call<Schemas["RecallResponse"]>("POST", "/recall", byFeatures);
  assert.equal(a.status, 200);
  assert.equal(a.body.items.length, 5);
  assert.equal(a.body.known_user, false);
  const scores = a.body.items.map((it) => it.score);
  assert.deepEqual(scores, [...scores].sort((x, y) => y - x));

  const known = await call<Schemas["RecallResponse"]>("POST", "/recall", { user: { user_id: 1 }, k: 3 } satisfies Schemas["RecallRequest"]);
  assert.equal(known.body.known_user, true);
  assert.ok(known.body.user.stored_features.length > 0);

  const first = a.body.items[0];
  assert.ok(first);
  const recent = await call<Schemas["RecallResponse"]>("POST", "/recall", {
    user: { age: 30, recent_movie_ids: [first.movie_id, 99999999] },
    k: 3,
  } satisfies Schemas["RecallRequest"]);
  assert.deepEqual(recent.body.user.unknown_recent_movie_ids, [99999999]);
  assert.ok(!recent.body.items.some((it) => it.movie_id === first.movie_id), "a recent movie came back");

  const next = a.body.next_offset;
  assert.equal(next, 5);
  const page2 = await call<Schemas["RecallResponse"]>("POST", "/recall", { ...byFeatures, offset: next } satisfies Schemas["RecallRequest"]);
  const seen = new Set(a.body.items.map((it) => it.movie_id));
  assert.ok(page2.body.items.every((it) => !seen.has(it.movie_id)), "page 2 repeats page 1");
});

test("score agrees with recall, and reports unknown ids", async () => {
  const user: Schemas["User"] = { user_id: 2 };
  const r = await call<Schemas["RecallResponse"]>("POST", "/recall", { user, k: 3 } satisfies Schemas["RecallRequest"]);
  const ids = r.body.items.map((it) => it.movie_id);
  const s = await call<Schemas["ScoreResponse"]>("POST", "/score", { user, movie_ids: [...ids, 99999999] } satisfies Schemas["ScoreRequest"]);
  assert.equal(s.status, 200);
  assert.deepEqual(s.body.unknown_movie_ids, [99999999]);
  assert.deepEqual(
    s.body.scores.map((x) => x.score),
    r.body.items.map((it) => it.score),
  );
});

test("batch: each entry answered on its own", async () => {
  const b = await call<Schemas["RecallBatchResponse"]>("POST", "/recall/batch", {
    requests: [{ user: { user_id: 1 }, k: 2 }, { user: { gender: "X" } }],
  });
  assert.equal(b.status, 200);
  assert.equal(b.body.results.length, 2);
  const [ok, bad] = b.body.results;
  assert.ok(ok && "items" in ok && ok.items.length === 2);
  assert.ok(bad && "status" in bad && bad.status === 400 && bad.field === "user.gender");
});

test("catalogue reads: search and neighbours", async () => {
  const m = await call<Schemas["MoviesResponse"]>("GET", "/movies?limit=2");
  assert.equal(m.status, 200);
  const movie = m.body.movies[0];
  assert.ok(movie);
  const sim = await call<Schemas["SimilarResponse"]>("GET", `/movies/${movie.movie_id}/similar?k=3`);
  assert.equal(sim.body.movie.movie_id, movie.movie_id);
  assert.equal(sim.body.items.length, 3);
  problem(await call("GET", "/movies/99999999/similar"), 404, "movie_id");
});

test("catalogue writes: put, replace, delete, and no token", async () => {
  const auth = { Authorization: `Bearer ${token}` };
  const change: Schemas["MovieChange"] = { title: "Arrival (2016)", genres: ["Drama", "Sci-Fi"], year: 2016 };
  const put = await call<Schemas["PutMovieResponse"]>("PUT", "/movies/900001", change, auth);
  assert.equal(put.status, 201);
  assert.equal(put.body.created, true);
  const again = await call<Schemas["PutMovieResponse"]>("PUT", "/movies/900001", { ...change, title: "Arrival" }, auth);
  assert.equal(again.status, 200);
  assert.equal(again.body.created, false);
  const del = await call<Schemas["DeleteMovieResponse"]>("DELETE", "/movies/900001", undefined, auth);
  assert.equal(del.status, 200);
  problem(await call("DELETE", "/movies/900001", undefined, auth), 404);
  // Prism itself refuses a request without the bearer scheme; a wrong token
  // reaches the service.
  problem(await call("PUT", "/movies/900002", change, { Authorization: "Bearer not-the-token-at-all" }), 401);
});

test("bad requests are problems naming the field", async () => {
  // Bodies that are not JSON are left to the Go tests: Prism parses a JSON
  // body before passing it on, and never answers one it cannot parse.
  const cases: Array<[string, string, number, string]> = [
    ["/recall", '{"user":{"gender":"X"}}', 400, "user.gender"],
    ["/recall", '{"user":{},"k":0}', 400, "k"],
    ["/recall", '{"user":{},"colour":"red"}', 400, "colour"],
    ["/recall", '{"user":{"age":null}}', 400, "user.age"],
    ["/score", '{"user":{},"movie_ids":[1,1]}', 400, "movie_ids"],
  ];
  for (const [path, body, status, field] of cases) {
    problem(await call("POST", path, body), status, field);
  }
  problem(await call("POST", "/recall", "{}", { "Content-Type": "text/plain" }), 415);
});
