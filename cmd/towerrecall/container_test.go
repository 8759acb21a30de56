package main

import (
	"debug/elf"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// distrolessNonroot is the uid and gid of the "nonroot" user of the
// gcr.io/distroless images, which the Dockerfile's USER names.
const distrolessNonroot = 65532

// TestE2EContainerImage checks what the Dockerfile puts into the image, as
// far as a machine without a Docker engine can. It reads the Dockerfile
// itself, so the two cannot drift apart: the binary built with the
// Dockerfile's own `go build` line must be static (no ELF interpreter, no
// dynamic section: the final stage is distroless/static, which has no
// libc), and started as the image starts it — the image's CMD, the config
// file the image copies from configs/, as the nonroot user when the test
// runs as root, the model on a read-only path as the Deployment mounts it —
// it must become ready, answer /recall and exit 0 on SIGTERM.
func TestE2EContainerImage(t *testing.T) {
	e2eOnly(t)
	df := parseDockerfile(t, "../../Dockerfile")
	if df.user != "nonroot:nonroot" {
		t.Errorf("Dockerfile USER %q, want nonroot:nonroot (the test runs as uid %d)", df.user, distrolessNonroot)
	}

	bin := filepath.Join(t.TempDir(), "towerrecall")
	build := exec.Command("go", append(append([]string{"build"}, df.buildFlags...), "-o", bin, "./cmd/towerrecall")...)
	build.Dir = "../.."
	build.Env = append(os.Environ(), df.buildEnv...)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build as in the Dockerfile (%v %v): %v\n%s", df.buildEnv, df.buildFlags, err, out)
	}
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("the image's binary is dynamically linked (%v); distroless/static has no libc", p.Type)
		}
	}
	_ = f.Close()

	// The artifact, read-only and readable by the nonroot user, as the
	// Deployment's read-only volume. Directories on the way are opened up
	// for that user too (t.TempDir makes them 0700).
	modelRoot := t.TempDir()
	model := filepath.Join(modelRoot, "model")
	trainDemo(t, bin, model, 1)
	if err := filepath.WalkDir(modelRoot, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return os.Chmod(path, 0o555)
		}
		return os.Chmod(path, 0o444)
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Chmod(modelRoot, 0o755); _ = os.Chmod(model, 0o755) }) // so TempDir can remove them
	for _, dir := range []string{filepath.Dir(modelRoot), filepath.Dir(bin)} {
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}

	// The image's command: ENTRYPOINT is the binary, CMD its arguments,
	// with the config path mapped back to configs/. --addr replaces the
	// config's :8080 (a port of its own in a container, maybe taken here).
	args := make([]string, len(df.cmd))
	for i, a := range df.cmd {
		if rest, ok := strings.CutPrefix(a, df.configDir+"/"); ok {
			a = filepath.Join("..", "..", "configs", rest)
		}
		args[i] = a
	}
	if len(args) == 0 || args[0] != "serve" {
		t.Fatalf("Dockerfile CMD %q does not start serve", df.cmd)
	}
	args = append(args, "--addr", "127.0.0.1:0")
	logs, logFile := fileLog(t)
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "TOWERRECALL_MODEL="+model) // as deploy/kubernetes/deployment.yaml sets it
	cmd.Stderr = logFile
	if os.Geteuid() == 0 {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: distrolessNonroot, Gid: distrolessNonroot}}
	} else {
		t.Logf("not root: serving as uid %d instead of the image's nonroot user", os.Geteuid())
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
		}
	})
	ready := logs.waitLog(t, "ready", time.Minute)
	base := "http://" + ready["addr"].(string)
	if cmd.SysProcAttr != nil {
		status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", cmd.Process.Pid))
		if err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf("Uid:\t%d\t", distrolessNonroot); !strings.Contains(string(status), want) {
			t.Errorf("serve does not run as the nonroot user:\n%s", status)
		}
	}

	resp, err := http.Post(base+"/recall", "application/json", strings.NewReader(`{"user":{"gender":"F","age":25},"k":5}`))
	if err != nil {
		t.Fatal(err)
	}
	var rec struct {
		Items []struct {
			MovieID int `json:"movie_id"`
		} `json:"items"`
	}
	err = json.NewDecoder(resp.Body).Decode(&rec)
	_ = resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || len(rec.Items) != 5 {
		t.Fatalf("/recall from the image's command: status %d, %d items, %v; log:\n%s", resp.StatusCode, len(rec.Items), err, tail(logs.String(), 3000))
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v; log:\n%s", err, tail(logs.String(), 3000))
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no exit within 30 s of SIGTERM")
	}
}

// dockerfile is what TestE2EContainerImage reads from the Dockerfile.
type dockerfile struct {
	buildEnv   []string // VAR=value before `go build`
	buildFlags []string // go build's flags, without -o and the package
	cmd        []string // CMD, exec form
	configDir  string   // where `COPY configs DIR` puts configs/
	user       string
}

func parseDockerfile(t *testing.T, path string) dockerfile {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var df dockerfile
	for _, line := range strings.Split(string(raw), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "RUN ") && strings.Contains(line, "go build"):
			words := shellWords(strings.TrimPrefix(line, "RUN "))
			i := 0
			for ; i < len(words) && strings.Contains(words[i], "="); i++ {
				df.buildEnv = append(df.buildEnv, words[i])
			}
			if i+1 >= len(words) || words[i] != "go" || words[i+1] != "build" {
				t.Fatalf("Dockerfile build line %q: want [VAR=value ...] go build ...", line)
			}
			for j := i + 2; j < len(words); j++ {
				if words[j] == "-o" {
					j++ // the output path
					continue
				}
				if strings.HasPrefix(words[j], "./") {
					continue // the package
				}
				df.buildFlags = append(df.buildFlags, words[j])
			}
		case strings.HasPrefix(line, "CMD "):
			if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "CMD ")), &df.cmd); err != nil {
				t.Fatalf("Dockerfile CMD is not in exec form: %v", err)
			}
		case strings.HasPrefix(line, "COPY configs "):
			df.configDir = strings.TrimSuffix(strings.TrimSpace(strings.TrimPrefix(line, "COPY configs ")), "/")
		case strings.HasPrefix(line, "USER "):
			df.user = strings.TrimSpace(strings.TrimPrefix(line, "USER "))
		}
	}
	if df.buildFlags == nil && df.buildEnv == nil || df.cmd == nil || df.configDir == "" {
		t.Fatalf("Dockerfile: no go build line, CMD or COPY configs: %+v", df)
	}
	return df
}

// shellWords splits s at spaces outside double quotes and drops the
// quotes: enough for a Dockerfile's RUN line, `-ldflags="-s -w"`.
func shellWords(s string) []string {
	var words []string
	var cur strings.Builder
	inQuote, inWord := false, false
	for _, c := range s {
		switch {
		case c == '"':
			inQuote, inWord = !inQuote, true
		case c == ' ' && !inQuote:
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words
}

func TestShellWords(t *testing.T) {
	t.Parallel()
	got := shellWords(`CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/x ./cmd/x`)
	want := []string{"CGO_ENABLED=0", "go", "build", "-trimpath", "-ldflags=-s -w", "-o", "/out/x", "./cmd/x"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("shellWords = %q, want %q", got, want)
	}
}
