package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/towerrecall/towerrecall/internal/movielens"
)

// e2eData returns the shared MovieLens directory, or skips. These tests run
// the real binary on the real data; .ci/run enables them.
func e2eData(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("TOWERRECALL_DATA")
	if dir == "" || os.Getenv("TOWERRECALL_E2E") == "" {
		t.Skip("set TOWERRECALL_E2E=1 and TOWERRECALL_DATA=$PWD/../shared/data (absolute) to run the end-to-end checks")
	}
	return dir
}

func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "towerrecall")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// TestE2ETrainEvalServeML100K trains the default model on the ml-100k
// timeline split (the deployment's question: the past trains, the future
// tests) with the real binary, evaluates it, serves it over loopback,
// reloads a retrained artifact on SIGHUP, and stops on SIGTERM. The
// issue-10 bars of every split are checked by internal/pipeline's
// TestE2EQualityBars.
func TestE2ETrainEvalServeML100K(t *testing.T) {
	data := e2eData(t)
	bin := buildBinary(t)
	dir := t.TempDir()
	model := filepath.Join(dir, "model")
	split := filepath.Join(data, "splits", "ml-100k", "timeline")
	trainArgs := []string{"train", "--data", filepath.Join(data, "ml-100k"), "--train", filepath.Join(split, "train.dat"),
		"--valid", filepath.Join(split, "valid.dat"), "--test", filepath.Join(split, "test.dat"), "--out", model}
	if out, err := exec.Command(bin, trainArgs...).CombinedOutput(); err != nil {
		t.Fatalf("train: %v\n%s", err, tail(string(out), 4000))
	}
	var stdout bytes.Buffer
	ev := exec.Command(bin, "eval", "--model", model, "--data", filepath.Join(data, "ml-100k"),
		"--train", filepath.Join(split, "train.dat"), "--valid", filepath.Join(split, "valid.dat"), "--test", filepath.Join(split, "test.dat"))
	var evErr bytes.Buffer
	ev.Stdout, ev.Stderr = &stdout, &evErr
	if err := ev.Run(); err != nil {
		t.Fatalf("eval: %v\n%s", err, evErr.String())
	}
	var m map[string]any
	if err := json.Unmarshal(stdout.Bytes(), &m); err != nil {
		t.Fatalf("eval output is not JSON: %v\n%s", err, stdout.String())
	}
	for _, k := range []string{"recall@10", "ndcg@10", "hit@10", "recall@50", "ndcg@50", "hit@50", "recall@100", "ndcg@100", "hit@100", "popularity", "cold_start", "recent_popularity", "ease"} {
		if _, ok := m[k]; !ok {
			t.Errorf("eval output lacks %q", k)
		}
	}
	pop := m["popularity"].(map[string]any)
	cold := m["cold_start"].(map[string]any)
	r10 := m["recall@10"].(float64)
	t.Logf("ml-100k timeline: recall@10 %.4f ndcg@10 %.4f recall@100 %.4f; cold start recall@10 %.4f; popularity recall@10 %.4f",
		r10, m["ndcg@10"], m["recall@100"], cold["recall@10"], pop["recall@10"])
	if p := pop["recall@10"].(float64); p < 0.075 || p > 0.085 {
		t.Errorf("popularity recall@10 = %.4f, the issue-10 reference on this split is 0.0799", p)
	}
	if r10 < minRecall10ML100K {
		t.Errorf("recall@10 = %.4f, below the bar %.3f", r10, minRecall10ML100K)
	}
	if rp := m["recent_popularity"].(map[string]any)["recall@10"].(float64); r10 <= rp {
		t.Errorf("recall@10 %.4f does not beat recent popularity %.4f", r10, rp)
	}
	if c := cold["recall@10"].(float64); c <= pop["recall@10"].(float64) {
		t.Errorf("cold-start recall@10 %.4f does not beat popularity %.4f", c, pop["recall@10"])
	}

	// Serve it over loopback.
	logs := &logBuffer{}
	srv := exec.Command(bin, "serve", "--model", model, "--addr", "127.0.0.1:0", "--demo=false")
	srv.Stderr = logs
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Process.Kill()
	ready := logs.waitLog(t, "ready", time.Minute)
	t.Logf("start to ready: %v ms", ready["start_to_ready_ms"])
	c := client{t: t, base: "http://" + ready["addr"].(string)}
	info := checkAPI(t, c, catalogOf(t, model))
	ds, err := movielens.LoadCatalog(filepath.Join(data, "ml-100k"))
	if err != nil {
		t.Fatal(err)
	}
	checkProfilesAndBatch(t, c, ds)
	checkServedRecall(t, c, ds, filepath.Join(split, "test.dat"), r10)
	// Trained with validation: /model names the recipe the search chose.
	if r := info.Recipe; r != "configured" && r != "recent-history" && r != "random-split" {
		t.Errorf("/model recipe %q, want the recipe validation chose", r)
	}

	// Retrain with another seed into the served directory; SIGHUP swaps it in.
	if out, err := exec.Command(bin, append(trainArgs, "--seed", "7", "--epochs", "2")...).CombinedOutput(); err != nil {
		t.Fatalf("retrain: %v\n%s", err, tail(string(out), 4000))
	}
	if err := srv.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	logs.waitLog(t, "reloaded", time.Minute)
	var after modelResp
	c.json("GET", "/model", "", 200, &after)
	if after.Version == info.Version {
		t.Errorf("version %q unchanged after reload", after.Version)
	}

	if err := srv.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Wait() }()
	select {
	case err := <-errc:
		if err != nil {
			t.Fatalf("serve exited with %v after SIGTERM; log:\n%s", err, tail(logs.String(), 3000))
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop within 30 s of SIGTERM")
	}
}

// checkServedRecall: eval's Recall@10 is what /recall serves. Every test
// user is asked for {"user_id": U} alone (the stored features, the seen
// movies left out) over HTTP, and the answers scored against the test
// file as the protocol scores them (hits over the user's test ratings,
// the mean over users) must give eval's number.
func checkServedRecall(t *testing.T, c client, ds *movielens.Dataset, testFile string, evalRecall10 float64) {
	t.Helper()
	test, err := movielens.ReadRatingsFile(testFile, ds)
	if err != nil {
		t.Fatal(err)
	}
	positives := map[movielens.UserID]map[movielens.MovieID]bool{}
	for _, r := range test {
		if positives[r.User] == nil {
			positives[r.User] = map[movielens.MovieID]bool{}
		}
		positives[r.User][r.Movie] = true
	}
	sum := 0.0
	for u, pos := range positives {
		var res recallResp
		c.json("POST", "/recall", fmt.Sprintf(`{"user":{"user_id":%d},"k":10}`, u), 200, &res)
		hits := 0
		for _, it := range res.Items {
			if pos[movielens.MovieID(it.MovieID)] {
				hits++
			}
		}
		sum += float64(hits) / float64(len(pos))
	}
	served := sum / float64(len(positives))
	t.Logf("served recall@10 over %d test users: %.6f; eval: %.6f", len(positives), served, evalRecall10)
	if math.Abs(served-evalRecall10) > 1e-9 {
		t.Errorf("/recall's answers score recall@10 %.6f, eval reports %.6f: eval does not measure what is served", served, evalRecall10)
	}
}

// minRecall10ML100K is the Recall@10 the default model must reach on the
// ml-100k timeline split (issue-10 bar: 1.05 × the best baseline, 0.088).
const minRecall10ML100K = 0.088
