package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/towerrecall/towerrecall/internal/artifact"
)

// chromiumPath is Debian's chromium package's binary.
const chromiumPath = "/usr/bin/chromium"

// TestE2EExplorerBrowser drives the explorer page of the real binary in
// headless Chromium: it fills the recall form as a person would, submits
// it, and requires the rendered list to be POST /recall's answer for the
// same body; opens a recalled movie's neighbours and requires them to be
// GET /movies/{id}/similar; finds a movie by title in both search boxes;
// and fails on any JavaScript exception or console error; then the error
// paths: a stalled answer, an empty one, a failed next page. Screenshots of
// both views are kept (TOWERRECALL_ARTIFACTS, or go test -artifacts).
func TestE2EExplorerBrowser(t *testing.T) {
	e2eOnly(t)
	chromium := findChromium(t)
	bin := buildBinary(t)
	model := filepath.Join(t.TempDir(), "model")
	trainForExplorer(t, bin, model)
	// Catalogue changes on, to give a movie a hostile title below.
	cfg := filepath.Join(t.TempDir(), "serve.yaml")
	if err := os.WriteFile(cfg, []byte("serve:\n  catalog_token: "+e2eToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startServe(t, bin, "--config", cfg, "--model", model) // the explorer is on by default
	// The browser reaches the service through a proxy that can stall an
	// answer (stall): a slow network, which the real binary never is.
	var stall, prefixOnly atomic.Bool
	target, err := url.Parse("http://" + p.addr)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.ErrorLog = log.New(io.Discard, "", 0) // the service is stopped at the end
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if stall.Load() && r.URL.Path == "/recall" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write([]byte(`{"model_version":`))
			_ = http.NewResponseController(w).Flush()
			<-r.Context().Done() // the rest never comes
			return
		}
		if strings.HasPrefix(r.URL.Path, "/svc/") { // a gateway serving the service under a prefix
			http.StripPrefix("/svc", proxy).ServeHTTP(w, r)
			return
		}
		if prefixOnly.Load() { // ... and nothing else
			http.NotFound(w, r)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)
	base := front.URL

	var info modelResp
	p.c.json("GET", "/model", "", 200, &info)
	if !slices.Contains(info.Vocabularies["occupation"], "programmer") || !slices.Contains(info.Vocabularies["genres"], "Comedy") {
		t.Fatalf("the model's vocabularies lack programmer or Comedy: %v", info.Vocabularies)
	}

	b := newBrowser(t, chromium)

	// The page, with the live model in its header and its vocabularies in
	// the form.
	b.do(t, "load the page", chromedp.Navigate(base+"/"))
	b.waitFor(t, "the model", `document.querySelector('#model').dataset.state === 'done'`)
	version, backend := b.text(t, "#model-version"), b.text(t, "#model-backend")
	occupations := eval[[]string](t, b, `[...document.querySelectorAll('#occupation option')].map(o => o.value).filter(Boolean)`)
	if version != info.Version || backend != info.Backend || !slices.Equal(occupations, info.Vocabularies["occupation"]) {
		t.Errorf("header %q/%q and occupations %v; GET /model says %q/%q, %v", version, backend, occupations, info.Version, info.Backend, info.Vocabularies["occupation"])
	}

	// The page works under a gateway's path prefix too: its assets and
	// its calls are relative to it.
	prefixOnly.Store(true)
	b.do(t, "load the page under a prefix", chromedp.Navigate(base+"/svc/"))
	b.waitFor(t, "the model under the prefix", `document.querySelector('#model').dataset.state === 'done' && getComputedStyle(document.body).margin === '0px'`)
	b.do(t, "search a title under the prefix", chromedp.SendKeys(chromedp.CSS("#recent-q"), "(")) // in every title, demo and MovieLens
	b.waitFor(t, "title matches under the prefix", `document.querySelector('#recent-hits button.hit') !== null`)
	b.do(t, "recall under the prefix", chromedp.Click(chromedp.CSS("#recall-submit")))
	b.waitFor(t, "movies under the prefix", `document.querySelector('#results').dataset.state === 'done'`)
	prefixOnly.Store(false)
	b.do(t, "load the page", chromedp.Navigate(base+"/"))
	b.waitFor(t, "the model", `document.querySelector('#model').dataset.state === 'done'`)

	// Enter on a tab chooses it and leaves the focus on it.
	for _, tab := range []string{"similar", "recall"} {
		eval[bool](t, b, `(document.querySelector('#tab-`+tab+`').focus(), true)`)
		b.do(t, "choose the "+tab+" tab with Enter", chromedp.KeyEvent(kb.Enter))
		b.waitFor(t, "the "+tab+" view", `!document.querySelector('#view-`+tab+`').hidden`)
		if f := eval[string](t, b, `document.activeElement.id || document.activeElement.tagName`); f != "tab-"+tab {
			t.Errorf("after Enter on the %s tab the focus is on %s", tab, f)
		}
	}

	// The arrow keys move between the tabs and choose one, and only the
	// chosen tab is a Tab stop (the ARIA tabs pattern; the arrows did
	// nothing).
	eval[bool](t, b, `(document.querySelector('#tab-recall').focus(), true)`)
	b.do(t, "the next tab", chromedp.KeyEvent(kb.ArrowRight))
	b.waitFor(t, "the similar view", `location.hash === '#similar' && !document.querySelector('#view-similar').hidden`)
	if got := eval[[]any](t, b, `[document.activeElement.id, document.querySelector('#tab-similar').tabIndex, document.querySelector('#tab-recall').tabIndex]`); !reflect.DeepEqual(got, []any{"tab-similar", float64(0), float64(-1)}) {
		t.Errorf("after ArrowRight on the first tab: focus, tab stops %v, want [tab-similar 0 -1]", got)
	}
	b.do(t, "the previous tab", chromedp.KeyEvent(kb.ArrowLeft))
	b.waitFor(t, "the recall view", `location.hash === '#recall' && !document.querySelector('#view-recall').hidden && document.activeElement.id === 'tab-recall'`)

	// A cold-start user: F, 25, programmer, comedies.
	b.do(t, "fill the form",
		chromedp.SetValue(chromedp.CSS("#gender"), "F"),
		chromedp.SendKeys(chromedp.CSS("#age"), "25"),
		chromedp.SetValue(chromedp.CSS("#occupation"), "programmer"),
		chromedp.Click(chromedp.CSS(`#genre-list input[value="Comedy"]`)),
		chromedp.Click(chromedp.CSS("#recall-submit")))
	b.waitFor(t, "the recalled movies", `document.querySelector('#results').dataset.state === 'done'`)
	body := map[string]any{"user": map[string]any{"gender": "F", "age": 25, "occupation": "programmer"}, "k": 20, "genres": []any{"Comedy"}}
	want := recallFor(t, p.c, body)
	checkSentBody(t, b, body)
	checkRows(t, "recall", b.rendered(t, "#results"), want.Items)
	meta := b.text(t, "#results-meta")
	for _, s := range []string{want.ModelVersion, want.Backend, "cold start"} {
		if !strings.Contains(meta, s) {
			t.Errorf("result line %q lacks %q", meta, s)
		}
	}

	// A recently watched movie, found by title: the page sends it as
	// user.recent_movie_ids, and the answer is /recall's for that body.
	b.do(t, "search a recently watched movie", chromedp.SendKeys(chromedp.CSS("#recent-q"), searchWord(want.Items[0].Title)))
	b.waitFor(t, "title matches", `document.querySelector('#recent-hits button.hit') !== null`)
	pickedID := eval[int](t, b, `Number(document.querySelector('#recent-hits button.hit').dataset.movieId)`)
	// The matches are announced (a status, read by screen readers while
	// the focus stays in the box): nothing said that any had appeared.
	if st := eval[[]string](t, b, `[...document.querySelectorAll('[role="status"], [aria-live]')].filter(e => e.closest('#recent-q, .recent')).map(e => e.textContent)`); len(st) != 1 || !strings.Contains(st[0], "match") {
		t.Errorf("the picker's live status reads %q, want one saying how many movies match", st)
	}
	// Enter in the search box picks the top hit; it does not submit the
	// recall form around it (which sent the body without the movie).
	b.do(t, "pick it with Enter", chromedp.SendKeys(chromedp.CSS("#recent-q"), kb.Enter))
	b.waitFor(t, "the picked movie", `document.querySelectorAll('#recent-picked li').length === 1`)
	checkSentBody(t, b, body)

	// With the keyboard: a hit picked with Enter, and a picked movie
	// removed with Enter, leave the focus in the picker. Both lists are
	// rebuilt, and the focus fell back to the start of the page.
	b.do(t, "search another movie", chromedp.SendKeys(chromedp.CSS("#recent-q"), searchWord(want.Items[1].Title)))
	otherHit := fmt.Sprintf(`[...document.querySelectorAll('#recent-hits button.hit')].find(h => h.dataset.movieId !== '%d')`, pickedID)
	b.waitFor(t, "its matches", otherHit+` !== undefined`)
	// Tab from the box reaches the first match, whose focus ring is whole
	// (the scrolling list cut off all of it but its lower edge).
	eval[bool](t, b, `(document.querySelector('#recent-q').focus(), true)`)
	b.do(t, "tab to the first match", chromedp.KeyEvent(kb.Tab))
	if !eval[bool](t, b, fmt.Sprintf(ringInside, "#recent-hits")) {
		t.Errorf("the focus ring of the first title match is cut off by the list (focus on %s)", eval[string](t, b, `document.activeElement.outerHTML`))
	}
	eval[bool](t, b, `(`+otherHit+`.focus(), true)`)
	b.do(t, "pick a hit with Enter", chromedp.KeyEvent(kb.Enter))
	b.waitFor(t, "two picked movies", `document.querySelectorAll('#recent-picked li').length === 2`)
	if f := eval[string](t, b, `document.activeElement.id || document.activeElement.tagName`); f != "recent-q" {
		t.Errorf("after picking a hit with the keyboard the focus is on %s, want #recent-q", f)
	}
	eval[bool](t, b, `(document.querySelectorAll('#recent-picked button.x')[1].focus(), true)`)
	b.do(t, "remove it with Enter", chromedp.KeyEvent(kb.Enter))
	b.waitFor(t, "one picked movie", `document.querySelectorAll('#recent-picked li').length === 1`)
	if !eval[bool](t, b, `document.activeElement.matches('#recent-picked button.x, #recent-q')`) {
		t.Errorf("after removing a picked movie with the keyboard the focus is on %s, want the picker", eval[string](t, b, `document.activeElement.tagName`))
	}
	b.do(t, "recall again", chromedp.Click(chromedp.CSS("#recall-submit")))
	b.waitFor(t, "the recalled movies", `document.querySelector('#results').dataset.state === 'done'`)
	if n := eval[int](t, b, `document.querySelectorAll('#recent-picked li').length`); n != 1 {
		t.Errorf("%d picked movies shown, want 1", n)
	}
	user := maps.Clone(body["user"].(map[string]any))
	user["recent_movie_ids"] = []any{pickedID}
	withPick := maps.Clone(body)
	withPick["user"] = user
	wantPick := recallFor(t, p.c, withPick)
	checkSentBody(t, b, withPick)
	checkRows(t, "recall with a picked movie", b.rendered(t, "#results"), wantPick.Items)
	b.screenshot(t, "explorer-recall.png")

	// On a phone the results scroll inside their panel; the page does not
	// grow wider than the screen (a 1fr grid column did, to the table's
	// width, cutting off the submit button).
	b.do(t, "a phone's width", chromedp.EmulateViewport(375, 800))
	if w := eval[int](t, b, `document.documentElement.scrollWidth`); w > 375 {
		t.Errorf("the page is %d px wide on a 375 px screen", w)
	}
	b.screenshot(t, "explorer-phone.png")
	b.do(t, "back to the desktop", chromedp.EmulateViewport(1280, 900))

	// A number the browser cannot parse (it reports it as empty) is an
	// error on its field, not a request without it.
	b.do(t, "type a bad user id",
		chromedp.SendKeys(chromedp.CSS("#user-id"), "1e"),
		chromedp.Click(chromedp.CSS("#recall-submit")))
	b.waitFor(t, "the field's error", `document.querySelector('#results').dataset.state === 'error' && document.querySelector('#user-id').getAttribute('aria-invalid') === 'true'`)
	checkSentBody(t, b, withPick) // the last request shown is still the good one
	// Nor is a number too large to send as typed: it went as 1e+23, and
	// the answer said an exponent was written.
	b.do(t, "type a huge user id",
		chromedp.SetValue(chromedp.CSS("#user-id"), strings.Repeat("9", 23)),
		chromedp.Click(chromedp.CSS("#recall-submit")))
	b.waitFor(t, "the field's error", `document.querySelector('#results-meta').textContent === 'Known user id is too large' && document.querySelector('#user-id').getAttribute('aria-invalid') === 'true'`)
	checkSentBody(t, b, withPick)
	b.do(t, "clear it", chromedp.SetValue(chromedp.CSS("#user-id"), ""))

	// On a wide screen the results are at the top of their column: a short
	// list asked from the form's button (the page scrolled down to it) is
	// brought into sight. It came above the screen, and nothing seemed to
	// happen.
	b.do(t, "ask for 3 movies from the button",
		chromedp.SetValue(chromedp.CSS("#k"), "3"),
		chromedp.Click(chromedp.CSS("#recall-submit")))
	b.waitFor(t, "the 3 movies", `document.querySelector('#results').dataset.state === 'done' && document.querySelectorAll('#results-table tbody tr').length === 3`)
	if !eval[bool](t, b, resultsInSight) {
		t.Errorf("a short list asked from the button is out of sight (the page is scrolled to %v)", eval[float64](t, b, `window.scrollY`))
	}
	b.do(t, "back to 20 movies", chromedp.SetValue(chromedp.CSS("#k"), "20"))

	// A bad value is the server's 400, shown on the field it names. The
	// browser logs the failed request; only here is that expected.
	b.allowNetworkErrors(true)
	b.do(t, "send a bad age",
		chromedp.SetValue(chromedp.CSS("#age"), "500"),
		chromedp.Click(chromedp.CSS("#recall-submit")))
	b.waitFor(t, "the problem", `document.querySelector('#results').dataset.state === 'error' && document.querySelector('#age').getAttribute('aria-invalid') === 'true'`)
	b.allowNetworkErrors(false)
	b.do(t, "fix the age", chromedp.SetValue(chromedp.CSS("#age"), "25"), chromedp.Click(chromedp.CSS("#recall-submit")))
	b.waitFor(t, "the recalled movies", `document.querySelector('#results').dataset.state === 'done' && !document.querySelector('#age').hasAttribute('aria-invalid')`)
	checkSentBody(t, b, withPick)
	checkRows(t, "recall after a fix", b.rendered(t, "#results"), wantPick.Items)

	// "More" appends the next page: /recall at the answer's next_offset.
	if wantPick.NextOffset != 20 {
		t.Fatalf("next_offset %d, want 20", wantPick.NextOffset)
	}
	// With the keyboard: the button is hidden while the page loads, so the
	// focus moves to the first new movie (it fell back to <body>).
	// Tab from the last movie reaches it, with its focus ring whole (the
	// results' scrolling box cut off its left and lower edges).
	eval[bool](t, b, `(document.querySelector('#results-table tbody tr:last-child .title a').focus(), true)`)
	b.do(t, "tab to More", chromedp.KeyEvent(kb.Tab))
	if !eval[bool](t, b, `document.activeElement.id === 'results-more' && `+fmt.Sprintf(ringInside, "#results")) {
		t.Errorf("the focus ring of More is cut off by the results' box (focus on %s)", eval[string](t, b, `document.activeElement.outerHTML`))
	}
	b.do(t, "show more with Enter", chromedp.KeyEvent(kb.Enter))
	b.waitFor(t, "the second page", `document.querySelectorAll('#results-table tbody tr').length === 40 && document.querySelector('#results').dataset.state === 'done'`)
	if !eval[bool](t, b, `document.activeElement === document.querySelectorAll('#results-table tbody tr')[20].querySelector('.title a')`) {
		t.Errorf("after More the focus is on %s, want the 21st movie's title", eval[string](t, b, `document.activeElement.tagName`))
	}
	page2 := maps.Clone(withPick)
	page2["offset"] = 20
	checkRows(t, "recall with the second page", b.rendered(t, "#results"), append(slices.Clone(wantPick.Items), recallFor(t, p.c, page2).Items...))

	// The neighbours of the first recalled movie, opened from its title.
	first := wantPick.Items[0].MovieID
	b.do(t, "open the similar view", chromedp.Click(chromedp.CSS(fmt.Sprintf(`#results-table tr[data-movie-id="%d"] .title a`, first))))
	b.waitFor(t, "the neighbours", fmt.Sprintf(`document.querySelector('#similar-id').value === '%d' && document.querySelector('#similar-results').dataset.state === 'done'`, first))
	checkRows(t, "similar", b.rendered(t, "#similar-results"), similar(t, p.c, first, 10).Items)

	// Another movie, found by title in the similar view.
	other := wantPick.Items[1]
	b.do(t, "search the similar view", chromedp.SendKeys(chromedp.CSS("#similar-q"), other.Title))
	hit := fmt.Sprintf(`#similar-hits button.hit[data-movie-id="%d"]`, other.MovieID)
	b.waitFor(t, "the title match", fmt.Sprintf(`document.querySelector('%s') !== null`, hit))
	b.do(t, "pick it", chromedp.Click(chromedp.CSS(hit)))
	b.waitFor(t, "its neighbours", fmt.Sprintf(`document.querySelector('#similar-id').value === '%d' && document.querySelector('#similar-results').dataset.state === 'done'`, other.MovieID))
	sim := similar(t, p.c, other.MovieID, 10)
	checkRows(t, "similar by title", b.rendered(t, "#similar-results"), sim.Items)
	if heading := b.text(t, "#similar-title"); heading != "Nearest to "+sim.Movie.Title {
		t.Errorf("similar view heading %q, want the movie's title %q", heading, sim.Movie.Title)
	}
	b.screenshot(t, "explorer-similar.png")

	// The same movie picked again with another k shows k neighbours (no
	// hashchange fires for the same movie).
	eval[string](t, b, `document.querySelector('#similar-q').value = ''`)
	b.do(t, "search it again with k = 3",
		chromedp.SetValue(chromedp.CSS("#similar-k"), "3"),
		chromedp.SendKeys(chromedp.CSS("#similar-q"), other.Title))
	b.waitFor(t, "the title match", fmt.Sprintf(`document.querySelector('%s') !== null`, hit))
	eval[bool](t, b, fmt.Sprintf(`(document.querySelector('%s').focus(), true)`, hit))
	b.do(t, "pick it with Enter", chromedp.KeyEvent(kb.Enter))
	b.waitFor(t, "three neighbours", `document.querySelectorAll('#similar-table tbody tr').length === 3`)
	if f := eval[string](t, b, `document.activeElement.id || document.activeElement.tagName`); f != "similar-q" {
		t.Errorf("after picking a hit with the keyboard the focus is on %s, want #similar-q", f)
	}
	// Enter on a neighbour's title opens its neighbours, and the focus
	// goes to the new list's heading: the list it was in is gone, and it
	// fell back to the start of the page.
	next := eval[string](t, b, `document.querySelectorAll('#similar-table tbody tr')[1].dataset.movieId`)
	eval[bool](t, b, `(document.querySelectorAll('#similar-table tbody tr')[1].querySelector('.title a').focus(), true)`)
	b.do(t, "follow a neighbour's title with Enter", chromedp.KeyEvent(kb.Enter))
	b.waitFor(t, "its neighbours", `document.querySelector('#similar-id').value === '`+next+`' && document.querySelector('#similar-results').dataset.state === 'done'`)
	if f := eval[string](t, b, `document.activeElement.id || document.activeElement.tagName`); f != "similar-title" {
		t.Errorf("after following a title with the keyboard the focus is on %s, want #similar-title", f)
	}

	// A bad k in the similar view marks that view's field, not the recall
	// form's k.
	b.allowNetworkErrors(true)
	b.do(t, "ask for too many neighbours",
		chromedp.SetValue(chromedp.CSS("#similar-k"), "100000"),
		chromedp.Click(chromedp.CSS("#similar-submit")))
	b.waitFor(t, "the problem", `document.querySelector('#similar-results').dataset.state === 'error'`)
	b.allowNetworkErrors(false)
	if marked := eval[[]string](t, b, `[...document.querySelectorAll('[aria-invalid]')].map(e => e.id)`); !slices.Equal(marked, []string{"similar-k"}) {
		t.Errorf("fields marked invalid: %v, want [similar-k]", marked)
	}

	// No movie id is an error said in words on that field (it was only an
	// outline, and the last error stayed beside it).
	b.do(t, "ask without a movie id",
		chromedp.SetValue(chromedp.CSS("#similar-k"), "10"),
		chromedp.SetValue(chromedp.CSS("#similar-id"), ""),
		chromedp.Click(chromedp.CSS("#similar-submit")))
	b.waitFor(t, "the error", `document.querySelector('#similar-results').dataset.state === 'error' && document.querySelector('#similar-id').getAttribute('aria-invalid') === 'true'`)
	if marked := eval[[]string](t, b, `[...document.querySelectorAll('[aria-invalid]')].map(e => e.id)`); !slices.Equal(marked, []string{"similar-id"}) {
		t.Errorf("fields marked invalid: %v, want [similar-id]", marked)
	}
	if msg, desc := b.text(t, "#similar-meta"), eval[string](t, b, `document.querySelector('#similar-id').getAttribute('aria-describedby') || ''`); !strings.Contains(msg, "movie id") || desc != "similar-meta" {
		t.Errorf("without a movie id the view says %q (described by %q), want an error naming the movie id", msg, desc)
	}

	// On a phone, an error that quotes a long value wraps inside its panel
	// (it widened the page past the screen).
	b.allowNetworkErrors(true)
	b.do(t, "a phone's width, and a long movie id",
		chromedp.EmulateViewport(375, 800),
		chromedp.SetValue(chromedp.CSS("#similar-id"), strings.Repeat("9", 60)),
		chromedp.Click(chromedp.CSS("#similar-submit")))
	b.waitFor(t, "the problem", `document.querySelector('#similar-results').dataset.state === 'error' && document.querySelector('#similar-meta').textContent.includes('999')`)
	b.allowNetworkErrors(false)
	if w := eval[int](t, b, `document.documentElement.scrollWidth`); w > 375 {
		t.Errorf("the page is %d px wide on a 375 px screen with an error on it", w)
	}
	b.screenshot(t, "explorer-phone-error.png")
	b.do(t, "back to the desktop", chromedp.EmulateViewport(1280, 900))

	// A catalogue client's title is shown as text wherever it appears
	// (hits, heading, picked movies), never parsed as HTML.
	hostile := `<img src=x onerror="document.title='pwned'"><b id=pwned>pwnedtitle</b> "&amp;' (2024)`
	put, _ := json.Marshal(map[string]any{"title": hostile, "genres": []string{"Comedy"}, "year": 2024})
	req, _ := http.NewRequest(http.MethodPut, base+"/movies/900001", strings.NewReader(string(put)))
	req.Header.Set("Authorization", "Bearer "+e2eToken)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("PUT /movies/900001: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	eval[string](t, b, `document.querySelector('#similar-q').value = ''`)
	b.do(t, "search the hostile title", chromedp.SendKeys(chromedp.CSS("#similar-q"), "pwnedtitle"))
	b.waitFor(t, "its hit", `document.querySelector('#similar-hits button.hit[data-movie-id="900001"]') !== null`)
	if got := eval[string](t, b, `document.querySelector('#similar-hits button.hit').firstChild.textContent`); got != hostile {
		t.Errorf("the hit shows %q, want the title as text %q", got, hostile)
	}
	b.do(t, "open it", chromedp.SendKeys(chromedp.CSS("#similar-q"), kb.Enter))
	b.waitFor(t, "its neighbours", `document.querySelector('#similar-id').value === '900001' && document.querySelector('#similar-results').dataset.state === 'done'`)
	if heading := b.text(t, "#similar-title"); heading != "Nearest to "+hostile {
		t.Errorf("similar view heading %q, want the title as text", heading)
	}
	b.do(t, "pick it in the recall form", chromedp.Navigate(base+"/#recall"))
	b.waitFor(t, "the model", `document.querySelector('#model').dataset.state === 'done'`)
	b.do(t, "search it", chromedp.SendKeys(chromedp.CSS("#recent-q"), "pwnedtitle"))
	b.waitFor(t, "its hit", `document.querySelector('#recent-hits button.hit[data-movie-id="900001"]') !== null`)
	b.do(t, "pick it", chromedp.SendKeys(chromedp.CSS("#recent-q"), kb.Enter))
	b.waitFor(t, "the picked movie", `document.querySelector('#recent-picked li:last-child').firstChild.textContent.includes('pwnedtitle')`)
	if got := eval[[]string](t, b, `[document.querySelector('#recent-picked li:last-child').firstChild.textContent, document.querySelector('#recent-picked li:last-child button.x').getAttribute('aria-label')]`); !slices.Equal(got, []string{hostile, "Remove " + hostile}) {
		t.Errorf("the picked movie shows %q, want the title as text", got)
	}
	if n, title := eval[int](t, b, `document.querySelectorAll('#pwned, img, body [onerror]').length`), eval[string](t, b, `document.title`); n != 0 || title == "pwned" {
		t.Errorf("the title was parsed as HTML: %d elements from it, document title %q", n, title)
	}

	// An answer that starts but never ends is the page's own timeout,
	// said as such (it read "signal timed out").
	stall.Store(true)
	b.allowNetworkErrors(true)
	b.do(t, "recall on a stalled network", chromedp.Click(chromedp.CSS("#recall-submit")))
	b.do(t, "wait for the page's timeout", chromedp.Poll[chromedp.Void](`document.querySelector('#results').dataset.state === 'error'`, chromedp.WithPollingTimeout(40*time.Second)))
	b.allowNetworkErrors(false)
	stall.Store(false)
	if meta := b.text(t, "#results-meta"); meta != "the service did not answer within 15 s" {
		t.Errorf("a stalled answer shows %q, want the page's timeout", meta)
	}
	if !eval[bool](t, b, resultsInSight) { // an error above the screen, as the short list
		t.Errorf("the error of a recall asked from the button is out of sight (the page is scrolled to %v)", eval[float64](t, b, `window.scrollY`))
	}

	// No movie passes the filters (every film noir hidden from the
	// catalogue): the view says so (it showed "movies 0" and no list).
	var noir itemsResp
	p.c.json("POST", "/recall", `{"user":{},"k":1000,"genres":["Film-Noir"],"exclude_seen":false}`, 200, &noir)
	for _, it := range noir.Items {
		req, _ := http.NewRequest(http.MethodDelete, fmt.Sprintf("%s/movies/%d", base, it.MovieID), nil)
		req.Header.Set("Authorization", "Bearer "+e2eToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("DELETE /movies/%d: %v %v", it.MovieID, resp, err)
		}
		resp.Body.Close()
	}
	b.do(t, "ask for film noir only",
		chromedp.Click(chromedp.CSS(`#genre-list input[value="Comedy"]`)),
		chromedp.Click(chromedp.CSS(`#genre-list input[value="Film-Noir"]`)),
		chromedp.Click(chromedp.CSS("#recall-submit")))
	b.waitFor(t, "the answer", `document.querySelector('#results').dataset.state === 'done'`)
	if meta := b.text(t, "#results-meta"); !strings.Contains(meta, "no movie passes") {
		t.Errorf("an empty answer shows %q, want it said that no movie passes", meta)
	}
	b.do(t, "back to comedies, two pages",
		chromedp.Click(chromedp.CSS(`#genre-list input[value="Film-Noir"]`)),
		chromedp.Click(chromedp.CSS(`#genre-list input[value="Comedy"]`)),
		chromedp.Click(chromedp.CSS("#recall-submit")))
	b.waitFor(t, "the first page", `document.querySelector('#results').dataset.state === 'done' && !document.querySelector('#results-more').hidden`)
	// Another model published between two pages: its next page does not
	// continue the first model's ranking (pages of two models were shown
	// as one list), so the list starts again from its first page, and says
	// why.
	republished, err := artifact.Load(model)
	if err != nil {
		t.Fatal(err)
	}
	republished.Manifest.Version += "-b"
	if err := artifact.Save(model, republished); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		var now modelResp
		if p.c.json("GET", "/model", "", 200, &now); now.Version == republished.Manifest.Version {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the republished model %s was not loaded", republished.Manifest.Version)
		}
	}
	b.do(t, "show more after a reload", chromedp.Click(chromedp.CSS("#results-more")))
	b.waitFor(t, "the new model's first page", fmt.Sprintf(`document.querySelector('#results').dataset.state === 'done' && document.querySelector('#model-version').textContent === %q`, republished.Manifest.Version))
	if n, meta := eval[int](t, b, `document.querySelectorAll('#results-table tbody tr').length`), b.text(t, "#results-meta"); n != 20 || !strings.Contains(strings.ToLower(meta), "list started again") || !strings.Contains(meta, republished.Manifest.Version) {
		t.Errorf("More after a reload shows %d movies and %q, want the new model's first 20 and the list said to start again", n, meta)
	}
	b.do(t, "show more", chromedp.Click(chromedp.CSS("#results-more")))
	b.waitFor(t, "the second page", `document.querySelectorAll('#results-table tbody tr').length === 40 && document.querySelector('#results').dataset.state === 'done'`)
	if meta := b.text(t, "#results-meta"); strings.Contains(strings.ToLower(meta), "started again") {
		t.Errorf("the second page of the same model still says %q", meta)
	}

	if errs := b.errors(); len(errs) > 0 {
		t.Errorf("the page logged %d errors:\n%s", len(errs), strings.Join(errs, "\n"))
	}

	// A later page that fails (here the service is gone) keeps the movies
	// shown and its More button to try again; the list was replaced by the
	// error, and a person had to start over from the first page.
	p.stop(t)
	b.allowNetworkErrors(true)
	eval[bool](t, b, `(document.querySelector('#results-more').focus(), true)`)
	b.do(t, "show more with the service gone", chromedp.KeyEvent(kb.Enter))
	b.waitFor(t, "the error", `document.querySelector('#results').dataset.state === 'error'`)
	state := eval[map[string]any](t, b, `({rows: document.querySelectorAll('#results-table tbody tr').length,
		tableShown: !document.querySelector('#results-table').hidden, moreShown: !document.querySelector('#results-more').hidden,
		moreFocused: document.activeElement === document.querySelector('#results-more'), meta: document.querySelector('#results-meta').textContent,
		besideMore: (() => { const e = document.querySelector('#results-more-error'), r = e && e.getBoundingClientRect();
			return !!e && !e.hidden && e.textContent.includes('did not come') && r.top >= 0 && r.bottom <= window.innerHeight })()})`)
	if state["rows"] != float64(40) || state["tableShown"] != true || state["moreShown"] != true || state["moreFocused"] != true || !strings.Contains(state["meta"].(string), "did not come") {
		t.Errorf("after a failed More: %v, want the 40 movies, More shown and focused, and the error", state)
	}
	// The results' first line is far above 40 rows: the error is also said
	// beside More, on screen (it was only at the top, out of sight).
	if state["besideMore"] != true {
		t.Errorf("after a failed More: %v, want the error beside More, on screen", state)
	}

	// Without a model the page asks again every 5 s (the service's
	// Retry-After). Its banner is an alert, which screen readers read out
	// whenever its text is written: it was rewritten, the same words, at
	// every retry.
	npModel := filepath.Join(t.TempDir(), "model")
	if err := os.Mkdir(npModel, 0o755); err != nil {
		t.Fatal(err)
	}
	np := startServeNotReady(t, bin, "--model", npModel)
	b.do(t, "a service without a model", chromedp.Navigate(fmt.Sprintf("http://%s/#similar/%d", np.addr, first)))
	b.waitFor(t, "the banner", `!document.querySelector('#banner').hidden && document.querySelector('#model').dataset.state === 'error' &&
		document.querySelector('#similar-results').dataset.state === 'error'`)
	eval[bool](t, b, `(window.bannerWrites = 0, new MutationObserver((ms) => { window.bannerWrites += ms.length })
		.observe(document.querySelector('#banner'), { childList: true, characterData: true, subtree: true }), true)`)
	b.do(t, "search a title while there is no model", chromedp.SendKeys(chromedp.CSS("#similar-q"), other.Title))
	b.waitFor(t, "the search's error", `document.querySelector('#similar-hits .error') !== null`)
	time.Sleep(6 * time.Second) // a retry
	if n := eval[int](t, b, `window.bannerWrites`); n != 0 {
		t.Errorf("the unchanged banner was rewritten %d times in a retry", n)
	}
	// Once the model is there, the page asks again what failed: the
	// neighbours its location names and the title search typed (they
	// kept saying "no model is loaded").
	install(t, model, npModel)
	if err := np.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	b.waitFor(t, "the model, the neighbours and the search", fmt.Sprintf(`document.querySelector('#model').dataset.state === 'done' &&
		document.querySelector('#similar-results').dataset.state === 'done' && document.querySelector('#similar-id').value === '%d' &&
		document.querySelector('%s') !== null`, first, hit))
	np.stop(t)
}

// resultsInSight is true when the recall view's result line is on the
// screen.
const resultsInSight = `(r => r.top >= 0 && r.bottom <= window.innerHeight)(document.querySelector('#results-meta').getBoundingClientRect())`

// ringInside is true when the focused element shows a focus ring that
// its box (the selector %s, a scrolling box) does not cut off.
const ringInside = `(e => {
	const s = getComputedStyle(e), out = parseFloat(s.outlineOffset) + parseFloat(s.outlineWidth);
	const r = e.getBoundingClientRect(), box = e.closest('%s').getBoundingClientRect();
	return e.matches(':focus-visible') && s.outlineStyle !== 'none' &&
		r.left - out >= box.left && r.right + out <= box.right && r.top - out >= box.top && r.bottom + out <= box.bottom;
})(document.activeElement)`

// findChromium returns Chromium's path, or skips (fails when
// TOWERRECALL_REQUIRE_CHROMIUM is set: .ci/run installs it).
func findChromium(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err == nil {
		return chromiumPath
	}
	if os.Getenv("TOWERRECALL_REQUIRE_CHROMIUM") != "" {
		t.Fatalf("%s is missing and TOWERRECALL_REQUIRE_CHROMIUM is set (.ci/run installs Debian's chromium)", chromiumPath)
	}
	t.Skipf("%s is missing (apt-get install chromium; .ci/run installs it): the explorer page is not tested in a browser here", chromiumPath)
	return ""
}

// trainForExplorer trains a quick model: on ml-100k when TOWERRECALL_DATA
// has it (real titles in the screenshots), else on the demo catalogue.
func trainForExplorer(t *testing.T, bin, out string) {
	t.Helper()
	data := "demo"
	if dir := os.Getenv("TOWERRECALL_DATA"); dir != "" {
		if _, err := os.Stat(filepath.Join(dir, "ml-100k", "u.data")); err == nil {
			data = filepath.Join(dir, "ml-100k")
		}
	}
	cmd := exec.Command(bin, "train", "--data", data, "--out", out, "--epochs", "3", "--progress=false")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("train on %s: %v\n%s", data, err, tail(string(b), 3000))
	}
	t.Logf("explorer model trained on %s", data)
}

// browser is one headless Chromium with one tab, and what its pages
// reported as errors.
type browser struct {
	ctx    context.Context
	mu     sync.Mutex
	errs   []string
	netOK  bool // network errors (a 400 the test provokes) are expected
	outDir string
	out    logBuffer // the browser's own stderr
}

func newBrowser(t *testing.T, chromium string) *browser {
	t.Helper()
	b := &browser{outDir: os.Getenv("TOWERRECALL_ARTIFACTS")}
	if b.outDir == "" {
		b.outDir = t.ArtifactDir()
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium),
		chromedp.Headless,
		chromedp.NoSandbox, // CI runs as root
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
		chromedp.CombinedOutput(&b.out),
	)
	// No timeout on the browser's own context: chromedp stops the browser
	// when it ends (see chromedp.Run). Each wait has its own.
	ctx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	ctx, cancelTab := chromedp.NewContext(ctx, chromedp.WithErrorf(t.Logf))
	t.Cleanup(cancelTab)
	b.ctx = ctx
	// Listen's func runs on the tab's reading loop: it only records.
	err := chromedp.Listen(ctx, func(ev any) {
		switch ev := ev.(type) {
		case *runtime.EventExceptionThrown:
			d := ev.ExceptionDetails
			msg := d.Text
			if d.Exception != nil {
				msg += " " + d.Exception.Description
			}
			b.report(fmt.Sprintf("exception at %s:%d:%d: %s", d.URL, d.LineNumber, d.ColumnNumber, msg))
		case *runtime.EventConsoleAPICalled:
			if ev.Type != runtime.ConsoleAPICalledTypeError && ev.Type != runtime.ConsoleAPICalledTypeAssert {
				return
			}
			var args []string
			for _, a := range ev.Args {
				if len(a.Value) > 0 {
					args = append(args, string(a.Value))
				} else {
					args = append(args, a.Description)
				}
			}
			b.report("console." + string(ev.Type) + ": " + strings.Join(args, " "))
		case *cdplog.EventEntryAdded:
			// Failed loads, CSP violations and other errors of the browser.
			e := ev.Entry
			if e.Level != cdplog.EntryLevelError {
				return
			}
			b.mu.Lock()
			expected := b.netOK && e.Source == cdplog.EntrySourceNetwork
			b.mu.Unlock()
			if !expected {
				b.report(fmt.Sprintf("log (%s) %s: %s", e.Source, e.URL, e.Text))
			}
		}
	})
	if err != nil {
		t.Fatalf("start %s: %v", chromium, err)
	}
	ua := eval[string](t, b, `navigator.userAgent`)
	t.Logf("browser: %s", ua)
	return b
}

// do runs actions in the tab, within a minute.
func (b *browser) do(t *testing.T, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, time.Minute)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatalf("%s: %v\nbrowser errors so far: %v\nbrowser output:\n%s", what, err, b.errors(), tail(b.out.String(), 2000))
	}
}

// waitFor polls a JavaScript condition in the page.
func (b *browser) waitFor(t *testing.T, what, cond string) {
	t.Helper()
	b.do(t, "wait for "+what, chromedp.Poll[chromedp.Void](cond, chromedp.WithPollingTimeout(30*time.Second)))
}

// text is the visible text of the element sel.
func (b *browser) text(t *testing.T, sel string) string {
	t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		t.Fatalf("text of %s: %v", sel, err)
	}
	return v
}

// eval evaluates a JavaScript expression in the page.
func eval[T any](t *testing.T, b *browser, js string) T {
	t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[T](js))
	if err != nil {
		t.Fatalf("evaluate %s: %v", js, err)
	}
	return v
}

func (b *browser) report(msg string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.errs = append(b.errs, msg)
}

func (b *browser) errors() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.errs)
}

func (b *browser) allowNetworkErrors(ok bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.netOK = ok
}

// screenshot saves the whole page as a PNG and logs its path.
func (b *browser) screenshot(t *testing.T, name string) {
	t.Helper()
	png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100)) // quality 100: PNG
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if err := os.MkdirAll(b.outDir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(b.outDir, name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("EXPLORER screenshot %s (%d bytes)", path, len(png))
}

// row is one movie as the page shows it.
type row struct {
	MovieID int    `json:"movie_id"`
	Title   string `json:"title"`
	Year    string `json:"year"`
	Genres  string `json:"genres"`
	Score   string `json:"score"`
}

// rendered reads the result table inside the element sel.
func (b *browser) rendered(t *testing.T, sel string) []row {
	t.Helper()
	js := fmt.Sprintf(`[...document.querySelectorAll('%s table tbody tr')].map(r => ({
		movie_id: Number(r.dataset.movieId),
		title: r.querySelector('.title').textContent,
		year: r.querySelector('.year').textContent,
		genres: [...r.querySelectorAll('.genres .tag')].map(g => g.textContent).join('|'),
		score: r.querySelector('.score').textContent.trim(),
	}))`, sel)
	return eval[[]row](t, b, js)
}

// apiItem is an item of /recall or /movies/{id}/similar.
type apiItem struct {
	MovieID int      `json:"movie_id"`
	Title   string   `json:"title"`
	Genres  []string `json:"genres"`
	Year    int      `json:"year"`
	Score   float32  `json:"score"`
}

type itemsResp struct {
	ModelVersion string `json:"model_version"`
	Backend      string `json:"backend"`
	Movie        struct {
		MovieID int    `json:"movie_id"`
		Title   string `json:"title"`
	} `json:"movie"`
	Items      []apiItem `json:"items"`
	NextOffset int       `json:"next_offset"`
}

func recallFor(t *testing.T, c client, body map[string]any) itemsResp {
	t.Helper()
	raw, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	var out itemsResp
	c.json("POST", "/recall", string(raw), 200, &out)
	if len(out.Items) < 2 {
		t.Fatalf("POST /recall %s: %d items; the test needs at least 2", raw, len(out.Items))
	}
	return out
}

func similar(t *testing.T, c client, id, k int) itemsResp {
	t.Helper()
	var out itemsResp
	c.json("GET", fmt.Sprintf("/movies/%d/similar?k=%d", id, k), "", 200, &out)
	return out
}

// checkRows requires the page's rows to be the API's items, in order.
func checkRows(t *testing.T, view string, got []row, want []apiItem) {
	t.Helper()
	wantRows := make([]row, len(want))
	for i, it := range want {
		year := "–"
		if it.Year != 0 {
			year = fmt.Sprint(it.Year)
		}
		wantRows[i] = row{MovieID: it.MovieID, Title: it.Title, Year: year, Genres: strings.Join(it.Genres, "|"), Score: fmt.Sprintf("%.4f", it.Score)}
	}
	if !reflect.DeepEqual(got, wantRows) {
		t.Errorf("%s: the page shows\n%v\nthe API answers\n%v", view, got, wantRows)
		return
	}
	t.Logf("%s: the page shows the API's %d movies, first %q", view, len(got), got[0].Title)
}

// checkSentBody requires the body the page shows it sent to be body.
func checkSentBody(t *testing.T, b *browser, body map[string]any) {
	t.Helper()
	shown, err := chromedp.Run(b.ctx, chromedp.TextContent(chromedp.CSS("#recall-request")))
	if err != nil {
		t.Fatal(err)
	}
	line, rest, _ := strings.Cut(shown, "\n")
	var sent, want any
	raw, _ := json.Marshal(body)
	if line != "POST /recall" || json.Unmarshal([]byte(rest), &sent) != nil || json.Unmarshal(raw, &want) != nil || !reflect.DeepEqual(sent, want) {
		t.Errorf("the page sent %q, the test posts %s", shown, raw)
	}
}

// searchWord is a word of a title to search for: its longest.
func searchWord(title string) string {
	words := strings.Fields(title)
	slices.SortStableFunc(words, func(a, b string) int { return len(b) - len(a) })
	return strings.ToLower(words[0])
}
