// Command yaci is a GitHub CI bot that runs each job of a repository's
// .yaci.yml as a Kubernetes Job and reports the result as a commit status.
//
//	yaci serve     take webhooks and run jobs on the cluster
//	yaci version   print the version
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3";
// without it, the module version from the build info is used.
var version = ""

const usage = `usage: yaci <command> [flags]

commands:
  serve     take GitHub webhooks and run their jobs as Kubernetes Jobs
  run       run the jobs of .yaci.yml on this machine, without a cluster
  validate  check a .yaci.yml and list every problem in it
  version   print yaci's version

"yaci <command> -h" lists a command's flags.`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, usage)
		return 2
	}

	var err error
	switch args[0] {
	case "serve":
		err = serve(args[1:], stderr)
	case "run":
		err = runLocal(args[1:], stdout, stderr)
	case "validate":
		err = validate(args[1:], stdout, stderr)
	case "version", "--version":
		fmt.Fprintln(stdout, "yaci", versionString())
	case "help", "-h", "--help":
		fmt.Fprintln(stdout, usage)
	default:
		fmt.Fprintf(stderr, "yaci: unknown command %q\n\n%s\n", args[0], usage)
		return 2
	}

	switch {
	case err == nil:
		return 0
	case errors.Is(err, errUsage):
		return 2
	default:
		fmt.Fprintf(stderr, "yaci %s: %v\n", args[0], err)
		return 1
	}
}

// errUsage means the flag package already told the user what was wrong.
var errUsage = errors.New("usage")

func versionString() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}

	return "(devel)"
}
