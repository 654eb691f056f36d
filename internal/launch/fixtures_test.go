package launch_test

import (
	"log/slog"
	"time"

	"github.com/yaci-ci/yaci/internal/launch"
	"github.com/yaci-ci/yaci/internal/repoconfig"
	"github.com/yaci-ci/yaci/internal/trigger"
)

// testOptions are the options most tests build with: defaults, in a
// namespace of their own.
var testOptions = launch.Options{
	Namespace: "yaci-runs",
	Logger:    slog.New(slog.DiscardHandler),
}

func pushRun() trigger.Run {
	return trigger.Run{
		Event: trigger.Event{
			Delivery: "5c1e9a52-8f0b-11ef-9d3a-0a58a9feac02",
			Kind:     repoconfig.EventPush,
			Repo: trigger.Repo{
				Owner:    "yaci-ci",
				Name:     "example",
				CloneURL: "https://github.com/yaci-ci/example.git",
			},
			InstallationID: 51234567,
			SHA:            "0d1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c",
			Ref:            "refs/heads/main",
			Branch:         "main",
			Before:         "9f8e7d6c5b4a39281706f5e4d3c2b1a098765432",
			HeadAt:         time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC),
			Message:        "Make the parser stricter\n\nIt now rejects tabs.",
			Sender:         "alice",
		},
		Job: repoconfig.Job{
			Name:      "unit",
			Image:     "golang:1.26",
			Run:       "go vet ./...\ngo test ./...",
			Env:       []repoconfig.EnvVar{{Name: "GOFLAGS", Value: "-mod=readonly"}},
			Timeout:   30 * time.Minute,
			On:        []repoconfig.EventKind{repoconfig.EventPush},
			Resources: repoconfig.Resources{CPU: "2", Memory: "4Gi"},
		},
		Attempt: 1,
	}
}

func prRun() trigger.Run {
	return trigger.Run{
		Event: trigger.Event{
			Delivery: "7e0f4c10-8f0b-11ef-8a1c-3b2f6d1e9a77",
			Kind:     repoconfig.EventPullRequest,
			Action:   "synchronize",
			Repo: trigger.Repo{
				Owner:    "yaci-ci",
				Name:     "example",
				CloneURL: "https://github.com/yaci-ci/example.git",
			},
			SHA:    "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678",
			Ref:    "refs/pull/42/head",
			Branch: "main",
			Sender: "bob",
			PullRequest: &trigger.PullRequest{
				Number: 42,
				Title:  "Teach the lexer about raw strings",
				HeadRepo: trigger.Repo{
					Owner:    "bob",
					Name:     "example",
					CloneURL: "https://github.com/bob/example.git",
				},
				HeadRef:           "raw-strings",
				BaseRef:           "main",
				Author:            "bob",
				AuthorAssociation: "CONTRIBUTOR",
			},
		},
		Job: repoconfig.Job{
			Name:  "lint",
			Image: "golangci/golangci-lint:v2.1",
			Run:   "golangci-lint run",
			On:    []repoconfig.EventKind{repoconfig.EventPullRequest},
		},
		Attempt: 2,
	}
}
