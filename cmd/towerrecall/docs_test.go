package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode"

	"github.com/towerrecall/towerrecall/internal/movielens"
)

var (
	mdFence   = regexp.MustCompile("(?s)```.*?```")
	mdLink    = regexp.MustCompile(`\]\(([^)\s]+)\)`)
	mdHeading = regexp.MustCompile(`(?m)^#{1,6}\s+(.+?)\s*$`)
)

// TestDocsLinks checks every relative link of README.md and docs/*.md: the
// file it names exists, and so does the heading its #anchor names (as
// GitHub spells anchors).
func TestDocsLinks(t *testing.T) {
	t.Parallel()
	root := filepath.Join("..", "..")
	docs, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	pages := append([]string{filepath.Join(root, "README.md")}, docs...)
	anchors := map[string]map[string]bool{}
	anchorsOf := func(path string) (map[string]bool, error) {
		if a, ok := anchors[path]; ok {
			return a, nil
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		a := map[string]bool{}
		for _, m := range mdHeading.FindAllStringSubmatch(mdFence.ReplaceAllString(string(raw), ""), -1) {
			base := slug(m[1])
			s := base
			for n := 1; a[s]; n++ { // GitHub numbers repeated headings
				s = fmt.Sprintf("%s-%d", base, n)
			}
			a[s] = true
		}
		anchors[path] = a
		return a, nil
	}
	links := 0
	for _, page := range pages {
		raw, err := os.ReadFile(page)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range mdLink.FindAllStringSubmatch(mdFence.ReplaceAllString(string(raw), ""), -1) {
			link := m[1]
			if strings.Contains(link, "://") || strings.HasPrefix(link, "mailto:") {
				continue
			}
			links++
			target, anchor, _ := strings.Cut(link, "#")
			path := page
			if target != "" {
				path = filepath.Join(filepath.Dir(page), target)
			}
			if _, err := os.Stat(path); err != nil {
				t.Errorf("%s links to %s: %v", page, link, err)
				continue
			}
			if anchor == "" || !strings.HasSuffix(path, ".md") {
				continue
			}
			a, err := anchorsOf(path)
			if err != nil {
				t.Fatal(err)
			}
			if !a[anchor] {
				t.Errorf("%s links to %s: %s has no heading with that anchor", page, link, path)
			}
		}
	}
	if links < 20 {
		t.Errorf("found %d relative links in %d pages; the link pattern no longer matches", links, len(pages))
	}
}

// slug is GitHub's anchor for a heading: lower case, with letters, digits,
// spaces, hyphens and underscores kept and spaces made hyphens.
func slug(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(heading) {
		switch {
		case r == ' ':
			b.WriteByte('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
			b.WriteRune(r)
		}
	}
	return b.String()
}

func TestSlug(t *testing.T) {
	t.Parallel()
	for heading, want := range map[string]string{
		"Earlier defaults (moved from docs/model.md)": "earlier-defaults-moved-from-docsmodelmd",
		"`eval`'s output":                  "evals-output",
		"8 and 32 dimensions side by side": "8-and-32-dimensions-side-by-side",
		"Ops – start to ready":             "ops--start-to-ready",
	} {
		if got := slug(heading); got != want {
			t.Errorf("slug(%q) = %q, want %q", heading, got, want)
		}
	}
}

// TestEvalOutputDocumented: every member eval prints, at any depth, is
// named in docs/model.md's "`eval`'s output" (metrics as `recall@K`):
// model_version was printed and named nowhere.
func TestEvalOutputDocumented(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a demo model")
	}
	t.Parallel()
	section := docSection(t, "model.md", "### `eval`'s output")
	dir, data, ds := demoDir(t, "data")
	older, test := movielens.TimelineSplit(ds.Ratings, 0.8)
	train, valid := movielens.TimelineSplit(older, 0.85)
	writeRatings(t, dir, map[string][]movielens.Rating{"train.dat": train, "valid.dat": valid, "test.dat": test})
	path := func(name string) string { return filepath.Join(dir, name) }
	model := filepath.Join(dir, "model")
	if _, err := cli("train", "--data", data, "--train", path("train.dat"), "--valid", path("valid.dat"), "--out", model, "--epochs", "1"); err != nil {
		t.Fatal(err)
	}
	out, err := cli("eval", "--model", model, "--data", data, "--train", path("train.dat"), "--valid", path("valid.dat"), "--test", path("test.dat"))
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("eval's output is not one JSON object: %v\n%s", err, out)
	}
	metric := regexp.MustCompile(`@\d+$`)
	named := map[string]bool{}
	var walk func(m map[string]any)
	walk = func(m map[string]any) {
		for k, v := range m {
			named[metric.ReplaceAllString(k, "@K")] = true
			if sub, ok := v.(map[string]any); ok {
				walk(sub)
			}
		}
	}
	walk(got)
	for k := range named {
		if !strings.Contains(section, "`"+k+"`") {
			t.Errorf("eval prints %q, which docs/model.md's \"`eval`'s output\" does not name", k)
		}
	}
}

// docSection returns the text of docs/file under heading, up to the next
// heading.
func docSection(t *testing.T, file, heading string) string {
	t.Helper()
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", file))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(doc), "\n"+heading+"\n")
	if !ok {
		t.Fatalf("docs/%s has no %q section", file, heading)
	}
	section, _, _ = strings.Cut(section, "\n#")
	return section
}
