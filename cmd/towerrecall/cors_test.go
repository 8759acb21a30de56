package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/chromedp/chromedp"
)

// corsPage is a page of another origin that calls the service from a
// browser: a simple request (GET /model) and a preflighted one (POST
// /recall with a JSON body), and records what the browser let it see.
const corsPage = `<!doctype html><title>cors</title><script>
const api = %q;
window.result = {};
Promise.all([
  fetch(api + '/model').then(r => r.status, e => 'blocked: ' + e.name),
  fetch(api + '/recall', {method: 'POST', headers: {'Content-Type': 'application/json'},
      body: JSON.stringify({user: {gender: 'F', age: 25}, k: 3})})
    .then(async r => r.status + ' ' + (await r.json()).items.length + ' items ' + (r.headers.get('X-Request-Id') ? 'id' : 'no id'),
          e => 'blocked: ' + e.name),
]).then(([simple, preflighted]) => { window.result = {simple, preflighted}; window.done = true; });
</script>`

// TestE2ECORSBrowser: in headless Chromium, a page from an allowed origin
// can call the real service with a simple and a preflighted request (and
// read the exposed X-Request-Id); a page from another origin is blocked by
// the browser for both.
func TestE2ECORSBrowser(t *testing.T) {
	e2eOnly(t)
	chromium := findChromium(t)
	bin := buildBinary(t)
	model := filepath.Join(t.TempDir(), "model")
	trainForExplorer(t, bin, model)

	var apiBase string
	page := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, corsPage, apiBase)
	}
	allowed := httptest.NewServer(http.HandlerFunc(page))
	defer allowed.Close()
	other := httptest.NewServer(http.HandlerFunc(page))
	defer other.Close()

	p := startServe(t, bin, "--model", model, "--cors-origins", allowed.URL)
	apiBase = "http://" + p.addr

	b := newBrowser(t, chromium)
	b.allowNetworkErrors(true) // the blocked origin's failures are the point
	for _, tc := range []struct {
		name, url           string
		simple, preflighted string
	}{
		{"allowed origin", allowed.URL, "200", "200 3 items id"},
		{"other origin", other.URL, "blocked: TypeError", "blocked: TypeError"},
	} {
		b.do(t, "load the page of "+tc.name, chromedp.Navigate(tc.url+"/"))
		b.waitFor(t, "the calls of "+tc.name, `window.done === true`)
		raw := eval[string](t, b, `JSON.stringify(window.result)`)
		var got struct{ Simple, Preflighted any }
		if err := json.Unmarshal([]byte(raw), &got); err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(got.Simple) != tc.simple || fmt.Sprint(got.Preflighted) != tc.preflighted {
			t.Errorf("%s: simple %v, preflighted %v; want %q, %q", tc.name, got.Simple, got.Preflighted, tc.simple, tc.preflighted)
		}
		t.Logf("CORS %s (%s): simple request %v, preflighted request %v", tc.name, tc.url, got.Simple, got.Preflighted)
	}
}
