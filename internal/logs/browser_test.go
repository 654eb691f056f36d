package logs

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/yaci-ci/yaci/internal/testenv"
)

// chromium returns the path of a headless-capable Chromium. Without one
// the test is skipped, unless testenv.EnvRequired says CI must run it.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if path, err := exec.LookPath(name); err == nil {
			return path
		}
	}
	if os.Getenv(testenv.EnvRequired) != "" {
		t.Fatalf("no chromium on PATH, and %s is set: install Debian's chromium package",
			testenv.EnvRequired)
	}
	t.Skip("no chromium on PATH; apt-get install -y chromium")

	return ""
}

// browse runs headless Chromium on url with extra flags and returns what
// it prints.
func browse(t *testing.T, url string, flags ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()

	args := append([]string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-dev-shm-usage", "--user-data-dir=" + t.TempDir(),
	}, flags...)
	cmd := exec.CommandContext(ctx, chromium(t), append(args, url)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium: %v\n%s", err, stderr.String())
	}

	return stdout.String()
}

// TestPageInBrowser checks what a browser makes of an archived run's
// page, and saves a screenshot (in $YACI_SCREENSHOT_DIR, when set, for
// people to look at).
func TestPageInBrowser(t *testing.T) {
	f := newFixture(t)
	run := f.archive(t, "unit", map[string]string{"clone": "kwok: clone\n", "run": colourLog})
	url := f.srv.URL + "/runs/" + run.Name + "?t=" + f.signer.Token(run.Name)

	// An archived run's page has no script: what the browser shows is
	// what works without JavaScript.
	dom := browse(t, url, "--dump-dom")
	for _, want := range []string{
		`id="L2"`, `href="#L2"`, "+ go test ./...", "--- FAIL: &lt;TestX&gt;",
		`<span class="ansi-bold ansi-green">ok</span>`, `id="clone-L1"`,
		"kwok: exit status 0", `class="state state-success"`,
	} {
		if !strings.Contains(dom, want) {
			t.Errorf("rendered DOM lacks %q", want)
		}
	}
	if strings.Contains(dom, "<script") {
		t.Error("an archived run's page has a script")
	}
	if t.Failed() {
		t.Logf("DOM:\n%s", dom)
	}

	shot := filepath.Join(t.TempDir(), "page.png")
	if dir := os.Getenv("YACI_SCREENSHOT_DIR"); dir != "" {
		shot = filepath.Join(dir, "run-page.png")
	}
	browse(t, url, "--hide-scrollbars", "--window-size=1100,700", "--screenshot="+shot)
	png, err := os.ReadFile(shot)
	if err != nil || !bytes.HasPrefix(png, []byte("\x89PNG")) {
		t.Fatalf("no screenshot: %v", err)
	}
}

// TestLivePageInBrowser checks that the follow script runs on a live
// run's page: it shows the follow toggle, which is hidden without it.
func TestLivePageInBrowser(t *testing.T) {
	f := newFixture(t)
	job := f.createRunning(t, "lint", time.Now().Add(-time.Minute))
	url := f.srv.URL + "/runs/" + job.Name + "?t=" + f.signer.Token(job.Name)

	dom := browse(t, url, "--dump-dom")
	if !strings.Contains(dom, `id="follow-box"`) || strings.Contains(dom, `id="follow-box" hidden`) {
		t.Errorf("the follow toggle is not shown; did the script run?\n%s", dom)
	}
	if !strings.Contains(dom, "data-stream=") || !strings.Contains(dom, `class="state state-running"`) {
		t.Errorf("the live page lacks its stream or state:\n%s", dom)
	}
}
