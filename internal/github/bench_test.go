package github_test

import (
	"bytes"
	"testing"

	"github.com/yaci-ci/yaci/internal/github"
	"github.com/yaci-ci/yaci/internal/githubtest"
)

// BenchmarkReadFile reads a 4 KiB config file from the fake over loopback,
// answered from the ETag cache (304) or in full (200). The fake's OpenAPI
// check is turned off so that the figures are the client's and HTTP's.
func BenchmarkReadFile(b *testing.B) {
	b.Setenv(githubtest.EnvOpenAPI, "")
	b.Chdir(b.TempDir())
	for _, bc := range []struct {
		name  string
		cache int
	}{
		{"etag-304", 0},
		{"no-cache-200", -1},
	} {
		b.Run(bc.name, func(b *testing.B) {
			s := githubtest.NewServer(b)
			s.SetFile(owner, repo, sha, ".yaci.yml", bytes.Repeat([]byte("x: 1\n"), 820))
			c := newTokenClient(b, s, func(o *github.Options) { o.CacheSize = bc.cache })
			b.ReportAllocs()

			for b.Loop() {
				if _, err := c.ReadFile(b.Context(), 0, owner, repo, ".yaci.yml", sha); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
