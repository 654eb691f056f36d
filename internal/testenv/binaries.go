package testenv

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
)

// The versions of the control plane. The k8s.io modules in yaci's go.mod
// are kept at the matching v0.37.x release.
const (
	KubernetesVersion = "v1.37.2"
	EtcdVersion       = "v3.7.3"
	KwokVersion       = "v0.8.0"
)

// Components lists the binaries EnsureBinaries provides, in start order.
var Components = []string{
	"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok",
}

// kubeCommands are built from k8s.io/kubernetes; etcd and kwok come from
// their own modules.
var kubeCommands = []string{"kube-apiserver", "kube-controller-manager", "kube-scheduler"}

// BinDir returns where the binaries of the pinned versions live:
// $YACI_TESTENV_BIN_DIR when set (binaries provided by hand, never built),
// else a folder per version set under the user cache directory, so a new
// version never mixes with an old build.
func BinDir() (dir string, prebuilt bool, err error) {
	if d := os.Getenv("YACI_TESTENV_BIN_DIR"); d != "" {
		return d, true, nil
	}

	cache, err := os.UserCacheDir()
	if err != nil {
		return "", false, fmt.Errorf("find a cache directory for control plane binaries: %w", err)
	}
	name := fmt.Sprintf("k8s-%s_etcd-%s_kwok-%s", KubernetesVersion, EtcdVersion, KwokVersion)

	return filepath.Join(cache, "yaci", "testenv", name), false, nil
}

// EnsureBinaries returns the folder holding every binary in Components,
// building the missing ones from the Go module proxy first. A cold build
// takes about 15 minutes on two cores; later calls return at once. Build
// output goes to progress. Concurrent callers (parallel test packages)
// wait on a file lock instead of building twice.
func EnsureBinaries(ctx context.Context, progress io.Writer) (string, error) {
	dir, prebuilt, err := BinDir()
	if err != nil {
		return "", err
	}
	if missing := missingBinaries(dir); len(missing) == 0 {
		return dir, nil
	} else if prebuilt {
		return "", fmt.Errorf("YACI_TESTENV_BIN_DIR=%s lacks %s", dir, strings.Join(missing, ", "))
	}

	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("create %s: %w", dir, err)
	}
	unlock, err := LockFile(filepath.Join(dir, ".build.lock"))
	if err != nil {
		return "", err
	}
	defer unlock()

	// Another process may have finished the build while this one waited.
	missing := missingBinaries(dir)
	if len(missing) == 0 {
		return dir, nil
	}
	if _, err := exec.LookPath("go"); err != nil {
		return "", fmt.Errorf("building the control plane needs the go command on PATH: %w", err)
	}
	fmt.Fprintf(progress, "testenv: building %s into %s (about 15 minutes when nothing is cached)\n",
		strings.Join(missing, ", "), dir)

	if err := buildMissing(ctx, dir, missing, progress); err != nil {
		return "", err
	}

	return dir, nil
}

func missingBinaries(dir string) []string {
	var missing []string
	for _, c := range Components {
		if fi, err := os.Stat(filepath.Join(dir, c)); err != nil || fi.Mode()&0o111 == 0 {
			missing = append(missing, c)
		}
	}

	return missing
}

// LockFile takes an exclusive flock on path, creating the file if needed,
// and waits for it. Helpers that build other test binaries into the user
// cache use it too, so that parallel test packages build each only once.
func LockFile(path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open lock %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}

	return func() { f.Close() }, nil
}

func buildMissing(ctx context.Context, dir string, missing []string, progress io.Writer) error {
	work, err := os.MkdirTemp("", "yaci-testenv-build-")
	if err != nil {
		return fmt.Errorf("create build folder: %w", err)
	}
	defer os.RemoveAll(work)

	// Each binary is built into staging and renamed into place, so an
	// interrupted build never leaves a half-written binary that looks done.
	staging := filepath.Join(work, "out")
	if err := os.MkdirAll(staging, 0o755); err != nil {
		return err
	}

	want := map[string]bool{}
	for _, m := range missing {
		want[m] = true
	}
	var kube []string
	for _, c := range kubeCommands {
		if want[c] {
			kube = append(kube, c)
		}
	}
	if len(kube) > 0 {
		if err := buildKube(ctx, filepath.Join(work, "kube"), staging, kube, progress); err != nil {
			return err
		}
	}
	if want["etcd"] {
		if err := buildEtcd(ctx, filepath.Join(work, "etcd"), staging, progress); err != nil {
			return err
		}
	}
	if want["kwok"] {
		err := goCmd(ctx, work, progress, []string{"GOBIN=" + staging},
			"install", "-trimpath", "sigs.k8s.io/kwok/cmd/kwok@"+KwokVersion)
		if err != nil {
			return fmt.Errorf("build kwok: %w", err)
		}
	}

	for _, m := range missing {
		if err := os.Rename(filepath.Join(staging, m), filepath.Join(dir, m)); err != nil {
			return fmt.Errorf("install %s: %w", m, err)
		}
	}

	return nil
}

// buildKube builds kube-* commands from k8s.io/kubernetes. That module
// points its staging modules (k8s.io/api, ...) at folders its zip lacks,
// so a small module of our own requires it and replaces each staging
// module with its published release of the same version.
func buildKube(ctx context.Context, work, out string, cmds []string, progress io.Writer) error {
	if err := os.MkdirAll(work, 0o755); err != nil {
		return err
	}
	modDir, err := moduleDir(ctx, work, "k8s.io/kubernetes@"+KubernetesVersion)
	if err != nil {
		return err
	}
	upstream, err := os.ReadFile(filepath.Join(modDir, "go.mod"))
	if err != nil {
		return fmt.Errorf("read k8s.io/kubernetes go.mod: %w", err)
	}
	goVersion, staging := parseKubeGoMod(upstream)
	if goVersion == "" || len(staging) == 0 {
		return errors.New("k8s.io/kubernetes go.mod: no go line or no staging replaces found")
	}

	stagingVersion := "v0." + strings.TrimPrefix(KubernetesVersion, "v1.")
	var gomod strings.Builder
	fmt.Fprintf(&gomod, "module yaci.local/kubebuild\n\ngo %s\n\n", goVersion)
	// The upstream module builds with its own language version's GODEBUG
	// defaults; keep them so behaviour matches the released binaries.
	fmt.Fprintf(&gomod, "godebug default=go%s\n\n", majorMinor(goVersion))
	fmt.Fprintf(&gomod, "require k8s.io/kubernetes %s\n\nreplace (\n", KubernetesVersion)
	for _, p := range staging {
		fmt.Fprintf(&gomod, "\t%s => %s %s\n", p, p, stagingVersion)
	}
	gomod.WriteString(")\n")

	var tools strings.Builder
	tools.WriteString("//go:build tools\n\npackage tools\n\nimport (\n")
	for _, c := range cmds {
		fmt.Fprintf(&tools, "\t_ %q\n", "k8s.io/kubernetes/cmd/"+c)
	}
	tools.WriteString(")\n")

	if err := writeFiles(work, map[string]string{
		"go.mod": gomod.String(), "tools.go": tools.String(),
	}); err != nil {
		return err
	}
	if err := goCmd(ctx, work, progress, nil, "mod", "tidy"); err != nil {
		return fmt.Errorf("resolve k8s.io/kubernetes modules: %w", err)
	}

	// Without these the binaries call themselves v0.0.0, which clients
	// cannot parse as a server version.
	v := "k8s.io/component-base/version"
	ldflags := fmt.Sprintf("-s -w -X %[1]s.gitVersion=%[2]s -X %[1]s.gitMajor=1 "+
		"-X %[1]s.gitMinor=%[3]s -X %[1]s.gitTreeState=clean",
		v, KubernetesVersion, strings.Split(KubernetesVersion, ".")[1])
	args := []string{"build", "-trimpath", "-ldflags", ldflags, "-o", out + "/"}
	for _, c := range cmds {
		args = append(args, "k8s.io/kubernetes/cmd/"+c)
	}
	if err := goCmd(ctx, work, progress, nil, args...); err != nil {
		return fmt.Errorf("build %s: %w", strings.Join(cmds, ", "), err)
	}

	return nil
}

// parseKubeGoMod returns the go version and the module paths that
// k8s.io/kubernetes replaces with ./staging folders.
func parseKubeGoMod(gomod []byte) (goVersion string, staging []string) {
	inReplace := false
	sc := bufio.NewScanner(bytes.NewReader(gomod))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(line, "go "):
			goVersion = strings.TrimSpace(strings.TrimPrefix(line, "go "))
		case line == "replace (":
			inReplace = true
		case inReplace && line == ")":
			inReplace = false
		case inReplace:
			f := strings.Fields(line)
			if len(f) == 3 && f[1] == "=>" && strings.HasPrefix(f[2], "./staging/") {
				staging = append(staging, f[0])
			}
		}
	}

	return goVersion, staging
}

func majorMinor(v string) string {
	parts := strings.SplitN(v, ".", 3)
	if len(parts) < 2 {
		return v
	}

	return parts[0] + "." + parts[1]
}

// buildEtcd builds etcd from its server module's main package, a route
// that works where Debian's etcd (3.4) is too old for kube-apiserver 1.37.
func buildEtcd(ctx context.Context, work, out string, progress io.Writer) error {
	if err := os.MkdirAll(work, 0o755); err != nil {
		return err
	}
	main := "package main\n\nimport (\n\t\"os\"\n\n\t\"go.etcd.io/etcd/server/v3/etcdmain\"\n)\n\n" +
		"func main() { etcdmain.Main(os.Args) }\n"
	if err := writeFiles(work, map[string]string{
		"go.mod": "module yaci.local/etcdbuild\n\ngo 1.26.0\n", "main.go": main,
	}); err != nil {
		return err
	}

	steps := [][]string{
		{"get", "go.etcd.io/etcd/server/v3@" + EtcdVersion},
		{"mod", "tidy"},
		{"build", "-trimpath", "-ldflags", "-s -w", "-o", filepath.Join(out, "etcd"), "."},
	}
	for _, s := range steps {
		if err := goCmd(ctx, work, progress, nil, s...); err != nil {
			return fmt.Errorf("build etcd: %w", err)
		}
	}

	return nil
}

func moduleDir(ctx context.Context, work, mod string) (string, error) {
	cmd := exec.CommandContext(ctx, "go", "mod", "download", "-json", mod)
	cmd.Dir = work
	outb, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return "", fmt.Errorf("download %s: %w: %s", mod, err, ee.Stderr)
		}
		return "", fmt.Errorf("download %s: %w", mod, err)
	}

	var info struct{ Dir, Error string }
	if err := json.Unmarshal(outb, &info); err != nil {
		return "", fmt.Errorf("download %s: decode go output: %w", mod, err)
	}
	if info.Error != "" || info.Dir == "" {
		return "", fmt.Errorf("download %s: %s", mod, info.Error)
	}

	return info.Dir, nil
}

func goCmd(ctx context.Context, dir string, progress io.Writer, env []string, args ...string) error {
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	// The build module must not join a caller's go.work.
	cmd.Env = append(os.Environ(), "GOWORK=off")
	cmd.Env = append(cmd.Env, env...)
	cmd.Stdout = progress
	cmd.Stderr = progress
	fmt.Fprintf(progress, "testenv: go %s\n", strings.Join(args, " "))

	return cmd.Run()
}

func writeFiles(dir string, files map[string]string) error {
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			return err
		}
	}

	return nil
}
