package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/yaci-ci/yaci/internal/repoconfig"
)

const validateUsage = `usage: yaci validate [FILE]

Checks a .yaci.yml with the parser the server uses and lists every
problem as FILE:LINE:COLUMN: MESSAGE. FILE defaults to .yaci.yml; a
directory means its .yaci.yml. Exit status: 0 valid, 1 invalid or
unreadable, 2 usage.`

// validate is "yaci validate": it parses one file and reports all of its
// problems, or how many jobs it has.
func validate(args []string, stdout, stderr io.Writer) error {
	flags := flag.NewFlagSet("yaci validate", flag.ContinueOnError)
	flags.SetOutput(stderr)
	flags.Usage = func() { fmt.Fprintln(stderr, validateUsage) }
	if err := flags.Parse(args); err != nil {
		return errUsage
	}
	if flags.NArg() > 1 {
		fmt.Fprintf(stderr, "yaci validate: one file at a time, got %d\n", flags.NArg())
		flags.Usage()
		return errUsage
	}
	file := repoconfig.FileName
	if flags.NArg() == 1 {
		file = flags.Arg(0)
	}

	cfg, err := loadConfig(file, stderr)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "ok: %s\n", count(len(cfg.Jobs), "job"))

	return nil
}

// loadConfig parses the .yaci.yml at path (or in it, for a directory).
// A file with problems has them written to stderr, one line each, and
// gives an error that counts them.
func loadConfig(path string, stderr io.Writer) (*repoconfig.Config, error) {
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		path = filepath.Join(path, repoconfig.FileName)
	}

	cfg, err := repoconfig.ParseFile(path)
	var perr *repoconfig.ParseError
	switch {
	case errors.As(err, &perr):
		for _, line := range perr.Format(path) {
			fmt.Fprintln(stderr, line)
		}
		return nil, fmt.Errorf("%s: %s", path, count(len(perr.Problems), "problem"))
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("%s: %w", path, fs.ErrNotExist)
	case err != nil:
		return nil, err
	}

	return cfg, nil
}

// count writes n and a noun, plural unless n is 1.
func count(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}

	return fmt.Sprintf("%d %ss", n, noun)
}
