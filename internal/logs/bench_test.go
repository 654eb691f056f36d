package logs

import (
	"bufio"
	"fmt"
	"io"
	"strings"
	"testing"
)

// benchLog returns a log of n lines like a Go test run's: mostly plain,
// some coloured, some with characters to escape.
func benchLog(n int) string {
	var b strings.Builder
	for i := range n {
		switch i % 10 {
		case 0:
			fmt.Fprintf(&b, "\x1b[1;32mok\x1b[0m  \texample.com/pkg%d\t0.%03ds\n", i, i%1000)
		case 5:
			fmt.Fprintf(&b, "\x1b[31m--- FAIL: TestCase%d (0.00s)\x1b[0m want <nil> & got %q\n", i, "x")
		default:
			fmt.Fprintf(&b, "=== RUN   TestCase%d/subtest_with_a_longer_name_%d\n", i, i)
		}
	}

	return b.String()
}

// BenchmarkRenderPage renders the page of an archived run whose log has
// 10,000 lines, reading the log from the directory store as a request
// would.
func BenchmarkRenderPage(b *testing.B) {
	f := &fixture{store: newTestStore(b, 0), signer: testSigner(b)}
	f.h = NewHandler(nil, testNamespace, f.store, f.signer, "", nil)
	text := benchLog(10_000)
	run := &Run{Name: testRun, Repo: "yaci-ci/example", SHA: testSHA, Job: "unit",
		Event: "push", State: StateSuccess, Pods: []Pod{{Name: testPod, Containers: []Container{
			{Name: "run", State: "terminated"},
		}}}}
	info, err := f.store.PutLog(b.Context(), testRun, testPod, "run", strings.NewReader(text))
	if err != nil {
		b.Fatal(err)
	}
	run.Pods[0].Containers[0].Log = &info

	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	for b.Loop() {
		if err := f.h.renderPage(b.Context(), io.Discard, f.h.pageData(run, false)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRenderLines renders the same 10,000 lines from memory, to tell
// the renderer's cost from the store's.
func BenchmarkRenderLines(b *testing.B) {
	text := benchLog(10_000)
	bw := bufio.NewWriter(io.Discard)

	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	for b.Loop() {
		lines := newHTMLLines(bw, "")
		_ = eachLine(strings.NewReader(text), false, func(l []byte) error {
			lines.line(l)
			return nil
		})
		bw.Flush()
	}
}
