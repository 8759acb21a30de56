package main

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/towerrecall/towerrecall/internal/movielens"
)

// checkProfilesAndBatch checks, against a served MovieLens model, that a
// known user id alone is served with the user's stored features, and that
// POST /recall/batch answers each entry as /recall does, in less time than
// the same requests one by one over loopback (the issue-12 bar; times are
// logged, medians of three runs).
func checkProfilesAndBatch(t *testing.T, c client, ds *movielens.Dataset) {
	t.Helper()
	var alone struct {
		recallResp
		User map[string]any `json:"user"`
	}
	c.json("POST", "/recall", `{"user":{"user_id":1},"k":20}`, 200, &alone)
	if stored := alone.User["stored_features"]; !reflect.DeepEqual(stored, []any{"gender", "age", "occupation", "zip"}) {
		t.Fatalf("user 1 alone: stored features %v, want all four", stored)
	}
	for _, f := range []string{"gender", "age", "occupation", "zip"} { // named, never returned
		if v, ok := alone.User[f]; ok {
			t.Errorf("user 1 alone: the answer returns the stored %s (%v)", f, v)
		}
	}
	u := ds.Users[slices.IndexFunc(ds.Users, func(u movielens.User) bool { return u.ID == 1 })]
	full, _ := json.Marshal(map[string]any{"user": map[string]any{"user_id": 1, "gender": u.Gender, "age": u.Age,
		"occupation": u.Occupation, "zip": u.Zip}, "k": 20})
	var withFeatures recallResp
	c.json("POST", "/recall", string(full), 200, &withFeatures)
	if !reflect.DeepEqual(alone.Items, withFeatures.Items) {
		t.Errorf("{user_id: 1} alone and with its stored features give different movies")
	}

	const n = 100
	bodies := make([]string, n)
	genders, occs := []string{"F", "M"}, []string{"programmer", "writer", "artist", "retired", "student"}
	for i := range bodies {
		if i%2 == 0 {
			bodies[i] = fmt.Sprintf(`{"user":{"user_id":%d},"k":10}`, 1+i*7)
		} else {
			bodies[i] = fmt.Sprintf(`{"user":{"gender":%q,"age":%d,"occupation":%q},"k":10}`, genders[i%2], 18+i%50, occs[i%len(occs)])
		}
	}
	batch := `{"requests":[` + strings.Join(bodies, ",") + `]}`
	var seqTimes, batchTimes []time.Duration
	var singles []json.RawMessage
	var results struct{ Results []json.RawMessage }
	for range 3 {
		start := time.Now()
		singles = singles[:0]
		for _, b := range bodies {
			_, _, out := c.do("POST", "/recall", b)
			singles = append(singles, out)
		}
		seqTimes = append(seqTimes, time.Since(start))
		start = time.Now()
		c.json("POST", "/recall/batch", batch, 200, &results)
		batchTimes = append(batchTimes, time.Since(start))
	}
	for i := range bodies {
		var a, b any
		_ = json.Unmarshal(singles[i], &a)
		_ = json.Unmarshal(results.Results[i], &b)
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("batch entry %d differs from /recall:\n%s\n%s", i, results.Results[i], singles[i])
		}
	}
	slices.Sort(seqTimes)
	slices.Sort(batchTimes)
	t.Logf("BATCH %d users: /recall/batch %v vs %d sequential /recall %v over loopback (medians of 3; %.1f× faster)",
		n, batchTimes[1], n, seqTimes[1], float64(seqTimes[1])/float64(batchTimes[1]))
	if batchTimes[1] >= seqTimes[1] {
		t.Errorf("a batch of %d took %v, no faster than %d sequential requests (%v)", n, batchTimes[1], n, seqTimes[1])
	}
}
