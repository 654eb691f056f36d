// Package repoconfig parses and validates a repository's .yaci.yml, the
// file that says which jobs yaci runs for a push or a pull request.
//
// The file is one YAML document with one key, jobs:
//
//	jobs:
//	  - name: test                  # required; a DNS label, at most 40 characters
//	    image: golang:1.26          # required; a container image reference
//	    run: |                      # required; run by "sh -e -c"
//	      go vet ./...
//	      go test ./...
//	    env: {GOFLAGS: -mod=readonly}  # values are taken as written
//	    timeout: 20m                # a Go duration, at most 24h; the server may cap it lower
//	    on: [push, pull_request]    # the default; a single word also works
//	    branches: [main, "release/*"]  # path.Match globs for pushes; default: every branch
//	    resources: {cpu: 500m, memory: 1Gi}  # Kubernetes quantities
//
// Parse reports every problem of a file at once, each at a line and
// column, so "yaci validate" and the commit status can show a user all
// that needs fixing. The file is strict: unknown keys, duplicate keys,
// anchors and aliases, tags other than the plain ones, several documents
// and deep nesting are all refused, which keeps a hostile file from
// costing more than its size to check.
//
// A key written with no value (or ~) counts as absent, except in env,
// where it sets the variable to the empty string. The env names CI, HOME,
// YACI and YACI_* are reserved for the values yaci sets. A job with branches
// must run on push: pull requests are not filtered by branch, so the
// filter would silently do nothing.
package repoconfig
