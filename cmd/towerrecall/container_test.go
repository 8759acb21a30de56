package main

import (
	"bufio"
	"debug/elf"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// distrolessNonroot is the uid and gid of the "nonroot" user of the
// gcr.io/distroless images, which both image files set as USER.
const distrolessNonroot = 65532

// TestE2EContainerImage builds the container image with podman (no Docker
// engine or registry needed: deploy/build-image.sh, FROM scratch), exports
// the root filesystem of a container created from it, and runs the image's
// own ENTRYPOINT and CMD from that filesystem — chrooted into it as the
// image's USER when the test is root — with the model on a read-only path
// where the Deployment mounts it: it must become ready, answer a real
// /recall and exit 0 on SIGTERM. It logs the image's size. It also checks
// that the Dockerfile (for machines with an engine) builds the binary with
// the same script and starts it the same way.
func TestE2EContainerImage(t *testing.T) {
	e2eOnly(t)
	local := parseImageFile(t, "../../deploy/Containerfile.local")
	docker := parseImageFile(t, "../../Dockerfile")
	checkImageFilesAgree(t, docker, local)

	podman, err := exec.LookPath("podman")
	if err != nil {
		if os.Getenv("TOWERRECALL_REQUIRE_PODMAN") != "" {
			t.Fatal("podman is not installed, and TOWERRECALL_REQUIRE_PODMAN is set (.ci/run installs it)")
		}
		t.Skip("podman is not installed (apt-get install podman; .ci/run installs it): the image is not built here")
	}
	tag := fmt.Sprintf("localhost/towerrecall:e2e-%d", os.Getpid())
	start := time.Now()
	build := exec.Command("../../deploy/build-image.sh", tag)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("deploy/build-image.sh: %v\n%s", err, tail(string(out), 4000))
	}
	t.Cleanup(func() { _ = exec.Command(podman, "rmi", "-f", tag).Run() })
	t.Logf("image %s built in %v", tag, time.Since(start).Round(time.Millisecond))

	var imgs []struct {
		Size   int64
		Config struct {
			User       string
			Env        []string
			Entrypoint []string
			Cmd        []string
		}
	}
	out, err := exec.Command(podman, "image", "inspect", tag).Output()
	if err != nil {
		t.Fatalf("podman image inspect: %v", err)
	}
	if err := json.Unmarshal(out, &imgs); err != nil || len(imgs) != 1 {
		t.Fatalf("podman image inspect: %d images, %v\n%s", len(imgs), err, out)
	}
	img := imgs[0]
	t.Logf("IMAGE size %d bytes (%.1f MiB), podman image inspect --format {{.Size}} %s", img.Size, float64(img.Size)/(1<<20), tag)
	if img.Config.User != fmt.Sprintf("%d:%d", distrolessNonroot, distrolessNonroot) {
		t.Errorf("image user %q, want %d:%d", img.Config.User, distrolessNonroot, distrolessNonroot)
	}
	if !slices.Equal(img.Config.Entrypoint, local.entrypoint) || !slices.Equal(img.Config.Cmd, local.cmd) {
		t.Errorf("image entrypoint %q cmd %q, not the Containerfile's %q %q", img.Config.Entrypoint, img.Config.Cmd, local.entrypoint, local.cmd)
	}

	// The image's root filesystem, as a container would see it.
	rootfs := exportRootfs(t, podman, tag)
	bin := filepath.Join(rootfs, img.Config.Entrypoint[0])
	checkStatic(t, bin)
	checkNonrootUser(t, filepath.Join(rootfs, "etc", "passwd"))
	if fi, err := os.Stat(filepath.Join(rootfs, "tmp")); err != nil || fi.Mode()&fs.ModeSticky == 0 || fi.Mode().Perm() != 0o777 {
		t.Errorf("/tmp in the image: %v %v, want a sticky world-writable directory", fi, err)
	}
	if _, err := os.Stat(filepath.Join(rootfs, "etc", "ssl", "certs", "ca-certificates.crt")); err != nil {
		t.Errorf("no CA bundle in the image (data download needs HTTPS): %v", err)
	}
	if out, err := exec.Command(bin, "version").Output(); err != nil || !strings.HasPrefix(string(out), "towerrecall ") {
		t.Errorf("the image's binary: version: %q %v", out, err)
	} else {
		t.Logf("the image's binary: %s", strings.TrimSpace(string(out)))
	}

	// The artifact where deploy/kubernetes/deployment.yaml mounts it
	// (TOWERRECALL_MODEL), read-only for the image's user.
	const modelPath = "/var/lib/towerrecall/model"
	model := filepath.Join(rootfs, modelPath)
	trainDemo(t, bin, model, 1)
	if err := filepath.WalkDir(filepath.Dir(model), func(path string, d fs.DirEntry, err error) error {
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

	// Run ENTRYPOINT + CMD from the exported filesystem. --addr replaces
	// the config's :8080 (a port of its own in a container, maybe taken here).
	args := append(slices.Clone(img.Config.Entrypoint[1:]), img.Config.Cmd...)
	args = append(args, "--addr", "127.0.0.1:0")
	logs, logFile := fileLog(t)
	cmd := exec.Command(img.Config.Entrypoint[0], args...)
	cmd.Env = append(slices.Clone(img.Config.Env), "TOWERRECALL_MODEL="+modelPath)
	cmd.Stderr = logFile
	if os.Geteuid() == 0 {
		cmd.Dir = "/"
		cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: rootfs,
			Credential: &syscall.Credential{Uid: distrolessNonroot, Gid: distrolessNonroot, Groups: []uint32{}}}
	} else {
		// Without root there is no chroot: the exported binary, its
		// exported config and the model, by their paths on this machine.
		t.Logf("not root: running the exported entrypoint as uid %d without chroot", os.Geteuid())
		cmd.Path = bin
		for i, a := range cmd.Args {
			if strings.HasPrefix(a, "/etc/") {
				cmd.Args[i] = filepath.Join(rootfs, a)
			}
		}
		cmd.Env = append(slices.Clone(img.Config.Env), "TOWERRECALL_MODEL="+model)
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
	c := client{t: t, base: "http://" + ready["addr"].(string)}
	if cmd.SysProcAttr != nil {
		status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", cmd.Process.Pid))
		if err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf("Uid:\t%d\t", distrolessNonroot); !strings.Contains(string(status), want) {
			t.Errorf("serve does not run as the nonroot user:\n%s", status)
		}
	}
	c.json("GET", "/readyz", "", http.StatusOK, nil)
	var rec recallResp
	c.json("POST", "/recall", `{"user":{"gender":"F","age":25},"k":5}`, http.StatusOK, &rec)
	if len(rec.Items) != 5 {
		t.Fatalf("/recall from the image: %d items, want 5; log:\n%s", len(rec.Items), tail(logs.String(), 3000))
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

// exportRootfs creates a container from the image (without starting it),
// exports its filesystem and unpacks it into a new directory.
func exportRootfs(t *testing.T, podman, image string) string {
	t.Helper()
	out, err := exec.Command(podman, "create", image).Output()
	if err != nil {
		t.Fatalf("podman create: %v", err)
	}
	id := strings.TrimSpace(string(out))
	defer func() { _ = exec.Command(podman, "rm", "-f", id).Run() }()
	tarball := filepath.Join(t.TempDir(), "rootfs.tar")
	if out, err := exec.Command(podman, "export", "-o", tarball, id).CombinedOutput(); err != nil {
		t.Fatalf("podman export: %v\n%s", err, out)
	}
	rootfs := filepath.Join(t.TempDir(), "rootfs")
	if err := os.Mkdir(rootfs, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("tar", "-xpf", tarball, "-C", rootfs).CombinedOutput(); err != nil {
		t.Fatalf("untar the exported filesystem: %v\n%s", err, out)
	}
	// The image's user must reach its files: open up the temporary
	// directories on the way (t.TempDir makes them 0700).
	for dir := rootfs; dir != "/" && dir != "."; dir = filepath.Dir(dir) {
		if strings.HasPrefix(dir, os.TempDir()) && dir != os.TempDir() {
			if err := os.Chmod(dir, 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Cleanup(func() { // read-only directories inside would stop TempDir's RemoveAll
		_ = filepath.WalkDir(rootfs, func(path string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				_ = os.Chmod(path, 0o755)
			}
			return nil
		})
	})
	return rootfs
}

// checkStatic fails if bin needs a dynamic loader: the final stages have
// no libc.
func checkStatic(t *testing.T, bin string) {
	t.Helper()
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("the image's binary is dynamically linked (%v); the image has no libc", p.Type)
		}
	}
}

// checkNonrootUser fails unless passwd names uid 65532 "nonroot", as the
// distroless base does.
func checkNonrootUser(t *testing.T, passwd string) {
	t.Helper()
	f, err := os.Open(passwd)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Split(sc.Text(), ":")
		if len(fields) >= 4 && fields[0] == "nonroot" && fields[2] == strconv.Itoa(distrolessNonroot) && fields[3] == strconv.Itoa(distrolessNonroot) {
			return
		}
	}
	t.Errorf("%s has no nonroot user %d", passwd, distrolessNonroot)
}

// imageFile is what the tests read from a Dockerfile or Containerfile: the
// final stage's settings, and every stage's base and RUN lines.
type imageFile struct {
	from       []string // every FROM image, in order
	runs       []string // every RUN line
	copies     []string // the final stage's COPY lines
	user       string
	expose     string
	entrypoint []string // exec form
	cmd        []string // exec form
}

func parseImageFile(t *testing.T, path string) imageFile {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var f imageFile
	execForm := func(line, instr string) []string {
		var v []string
		if err := json.Unmarshal([]byte(strings.TrimPrefix(line, instr)), &v); err != nil {
			t.Fatalf("%s: %s is not in exec form: %v", path, line, err)
		}
		return v
	}
	for _, line := range strings.Split(string(raw), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "FROM "):
			f.from = append(f.from, strings.Fields(line)[1])
			f.copies = nil // only the final stage's
		case strings.HasPrefix(line, "RUN "):
			f.runs = append(f.runs, strings.TrimPrefix(line, "RUN "))
		case strings.HasPrefix(line, "COPY "):
			f.copies = append(f.copies, strings.TrimPrefix(line, "COPY "))
		case strings.HasPrefix(line, "USER "):
			f.user = strings.TrimSpace(strings.TrimPrefix(line, "USER "))
		case strings.HasPrefix(line, "EXPOSE "):
			f.expose = strings.TrimSpace(strings.TrimPrefix(line, "EXPOSE "))
		case strings.HasPrefix(line, "ENTRYPOINT "):
			f.entrypoint = execForm(line, "ENTRYPOINT ")
		case strings.HasPrefix(line, "CMD "):
			f.cmd = execForm(line, "CMD ")
		}
	}
	if len(f.from) == 0 || len(f.entrypoint) == 0 {
		t.Fatalf("%s: no FROM or ENTRYPOINT", path)
	}
	return f
}

// checkImageFilesAgree: the Dockerfile (for machines with an engine) and
// deploy/Containerfile.local (built and run by this test) put the same
// binary, built by the same script, at the same path, and start it the same
// way; the Dockerfile's bases are fully qualified (podman resolves no
// short names).
func checkImageFilesAgree(t *testing.T, docker, local imageFile) {
	t.Helper()
	for _, from := range docker.from {
		host, _, ok := strings.Cut(from, "/")
		if !ok || !strings.ContainsAny(host, ".:") && host != "localhost" {
			t.Errorf("Dockerfile: FROM %s is not a fully qualified image name (registry/...)", from)
		}
	}
	builds := 0
	for _, run := range docker.runs {
		if strings.Contains(run, "go build") {
			t.Errorf("Dockerfile: RUN %s: the binary is built by deploy/build-binary.sh, nowhere else", run)
		}
		if strings.Contains(run, "deploy/build-binary.sh") {
			builds++
		}
	}
	if builds != 1 {
		t.Errorf("Dockerfile: %d RUN lines call deploy/build-binary.sh, want 1", builds)
	}
	if local.from[len(local.from)-1] != "scratch" {
		t.Errorf("Containerfile.local: FROM %s, want scratch (nothing to pull)", local.from)
	}
	if len(local.runs) != 0 {
		t.Errorf("Containerfile.local: RUN %q: scratch has no shell", local.runs)
	}
	want := fmt.Sprintf("%d:%d", distrolessNonroot, distrolessNonroot)
	for name, f := range map[string]imageFile{"Dockerfile": docker, "Containerfile.local": local} {
		if f.user != want {
			t.Errorf("%s: USER %q, want %s", name, f.user, want)
		}
		if !slices.Contains(f.copies, "configs /etc/towerrecall") {
			t.Errorf("%s: no COPY configs /etc/towerrecall (the CMD's config)", name)
		}
	}
	if !slices.Equal(docker.entrypoint, local.entrypoint) || !slices.Equal(docker.cmd, local.cmd) || docker.expose != local.expose {
		t.Errorf("the two images start differently: Dockerfile %q %q %s, Containerfile.local %q %q %s",
			docker.entrypoint, docker.cmd, docker.expose, local.entrypoint, local.cmd, local.expose)
	}
	if binPath := docker.entrypoint[0]; !slices.ContainsFunc(docker.copies, func(c string) bool { return strings.HasSuffix(c, " "+binPath) }) ||
		!slices.ContainsFunc(local.copies, func(c string) bool { return strings.HasSuffix(c, " "+binPath) }) {
		t.Errorf("both images must copy the binary to their ENTRYPOINT %s: %q, %q", binPath, docker.copies, local.copies)
	}
}
