package main

import (
	"bytes"
	"errors"
	"flag"
	"strings"
	"testing"
	"time"
)

// valid returns options that pass Validate, for cases to break one way.
func valid() serveOptions {
	var o serveOptions
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	o.bind(fs)
	o.WebhookSecretFile = "/secrets/webhook"
	o.GitHubTokenFile = "/secrets/token"

	return o
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		change func(*serveOptions)
		want   []string // each must appear in the error; none means valid
	}{
		{"defaults with a secret and a token", func(*serveOptions) {}, nil},
		{"app auth", func(o *serveOptions) {
			o.GitHubTokenFile, o.GitHubAppID, o.GitHubAppKeyFile = "", 42, "/secrets/key.pem"
		}, nil},
		{"no webhook secret", func(o *serveOptions) { o.WebhookSecretFile = "" },
			[]string{"--webhook-secret-file", "YACI_WEBHOOK_SECRET_FILE", "refuses"}},
		{"no github auth", func(o *serveOptions) { o.GitHubTokenFile = "" },
			[]string{"GitHub authentication is required"}},
		{"both auths", func(o *serveOptions) { o.GitHubAppID, o.GitHubAppKeyFile = 1, "/k" },
			[]string{"choose one GitHub authentication"}},
		{"app id without key", func(o *serveOptions) { o.GitHubTokenFile, o.GitHubAppID = "", 7 },
			[]string{"needs both --github-app-id"}},
		{"relative api url", func(o *serveOptions) { o.GitHubAPIURL = "api.github.com" },
			[]string{"--github-api-url", "absolute"}},
		{"bad public url", func(o *serveOptions) { o.PublicURL = "ftp://ci.example.com" },
			[]string{"--public-url"}},
		{"default over max", func(o *serveOptions) { o.DefaultTimeout, o.MaxTimeout = 3*time.Hour, time.Hour },
			[]string{"--default-timeout 3h0m0s is longer than --max-timeout 1h0m0s"}},
		{"zero workers", func(o *serveOptions) { o.Workers = 0 }, []string{"--workers"}},
		{"s3 without bucket", func(o *serveOptions) { o.Archive = "s3" }, []string{"--s3-bucket"}},
		{"s3 half credentials", func(o *serveOptions) { o.Archive, o.S3Bucket, o.S3AccessKeyFile = "s3", "b", "/k" },
			[]string{"go together"}},
		{"unknown archive", func(o *serveOptions) { o.Archive = "tape" }, []string{`--archive "tape"`}},
		{"zero max running", func(o *serveOptions) { o.MaxRunning = 0 }, []string{"--max-running"}},
		{"log format", func(o *serveOptions) { o.LogFormat = "xml" }, []string{`--log-format "xml"`}},
		{"log level", func(o *serveOptions) { o.LogLevel = "loud" }, []string{"--log-level"}},
		{"every problem at once", func(o *serveOptions) {
			o.WebhookSecretFile, o.GitHubTokenFile, o.Workers = "", "", -1
		}, []string{"--webhook-secret-file", "GitHub authentication", "--workers"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := valid()
			tt.change(&o)
			err := o.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatal("Validate() = nil, want an error")
			}
			if !errors.Is(err, errOptions) {
				t.Errorf("error %v does not wrap errOptions", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestApplyEnv(t *testing.T) {
	env := map[string]string{
		"YACI_LISTEN":          ":9999",
		"YACI_NAMESPACE":       "ci",
		"YACI_GITHUB_APP_ID":   "12",
		"YACI_DEFAULT_TIMEOUT": "5m",
	}
	var o serveOptions
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	o.bind(fs)
	if err := fs.Parse([]string{"--namespace", "from-flag"}); err != nil {
		t.Fatal(err)
	}
	if err := applyEnv(fs, serveEnv, func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}

	if o.Listen != ":9999" || o.GitHubAppID != 12 || o.DefaultTimeout != 5*time.Minute {
		t.Errorf("environment not applied: %+v", o)
	}
	if o.Namespace != "from-flag" {
		t.Errorf("namespace = %q, want the flag to win over YACI_NAMESPACE", o.Namespace)
	}

	env["YACI_WORKERS"] = "many"
	err := applyEnv(fs, serveEnv, func(k string) string { return env[k] })
	if err == nil || !strings.Contains(err.Error(), "YACI_WORKERS") {
		t.Errorf("bad environment value: err = %v, want one naming YACI_WORKERS", err)
	}
}

// TestEveryFlagHasATwin keeps the environment table complete as flags
// are added.
func TestEveryFlagHasATwin(t *testing.T) {
	var o serveOptions
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	o.bind(fs)
	twins := map[string]bool{}
	for _, s := range serveEnv {
		if fs.Lookup(s.flag) == nil {
			t.Errorf("env %s names unknown flag --%s", s.env, s.flag)
		}
		twins[s.flag] = true
	}
	fs.VisitAll(func(f *flag.Flag) {
		if !twins[f.Name] {
			t.Errorf("flag --%s has no environment twin", f.Name)
		}
	})
}

func TestRunRefusesWithoutSecret(t *testing.T) {
	t.Setenv("YACI_WEBHOOK_SECRET_FILE", "")
	var stdout, stderr bytes.Buffer
	code := run([]string{"serve", "--github-token-file", "/x"}, &stdout, &stderr)
	if code != 1 || !strings.Contains(stderr.String(), "--webhook-secret-file") {
		t.Errorf("exit %d, stderr %q; want 1 and a message naming the missing secret", code, stderr.String())
	}
}

func TestRunUsage(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(nil, &stdout, &stderr); code != 2 || !strings.Contains(stderr.String(), "usage") {
		t.Errorf("no command: exit %d, stderr %q", code, stderr.String())
	}
	stderr.Reset()
	if code := run([]string{"launch-missiles"}, &stdout, &stderr); code != 2 {
		t.Errorf("unknown command: exit %d", code)
	}
	if code := run([]string{"version"}, &stdout, &stderr); code != 0 || !strings.HasPrefix(stdout.String(), "yaci ") {
		t.Errorf("version: exit %d, stdout %q", code, stdout.String())
	}
}
