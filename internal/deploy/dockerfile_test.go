package deploy

import (
	"bufio"
	"debug/elf"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// dockerfile is the part of a Dockerfile the tests read.
type dockerfile struct {
	stages []*stage
}

// stage is one FROM section.
type stage struct {
	image, name string
	args        map[string]string // ARG defaults
	runs        []string          // RUN commands, continuation lines joined
	copies      [][]string        // COPY arguments, flags included
	user        string
	entrypoint  []string
	cmd         []string
}

// parseDockerfile reads the instructions the tests check. It knows the
// handful of instructions yaci's Dockerfile uses and fails on others, so
// that a new instruction is looked at rather than ignored.
func parseDockerfile(path string) (*dockerfile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()

	var (
		df   dockerfile
		cur  *stage
		line string
	)
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		text := strings.TrimSpace(sc.Text())
		if line == "" && (text == "" || strings.HasPrefix(text, "#")) {
			continue
		}
		if rest, cont := strings.CutSuffix(text, "\\"); cont {
			line += rest + " "
			continue
		}
		line += text
		instr, args, _ := strings.Cut(line, " ")
		args = strings.TrimSpace(args)
		line = ""

		if instr = strings.ToUpper(instr); instr != "FROM" && cur == nil {
			return nil, fmt.Errorf("%s:%d: %s before FROM", path, n, instr)
		}
		switch instr {
		case "FROM":
			cur = &stage{args: map[string]string{}}
			words := dropFlags(strings.Fields(args))
			cur.image = words[0]
			if len(words) == 3 && strings.EqualFold(words[1], "AS") {
				cur.name = words[2]
			}
			df.stages = append(df.stages, cur)
		case "ARG":
			name, def, _ := strings.Cut(args, "=")
			cur.args[name] = def
		case "RUN":
			cur.runs = append(cur.runs, strings.Join(dropFlags(strings.Fields(args)), " "))
		case "COPY":
			cur.copies = append(cur.copies, strings.Fields(args))
		case "USER":
			cur.user = args
		case "ENTRYPOINT", "CMD":
			var list []string
			if err := json.Unmarshal([]byte(args), &list); err != nil {
				return nil, fmt.Errorf("%s:%d: %s is not in exec (JSON) form: %w", path, n, instr, err)
			}
			if instr == "CMD" {
				cur.cmd = list
			} else {
				cur.entrypoint = list
			}
		case "WORKDIR", "EXPOSE", "ENV", "LABEL":
		default:
			return nil, fmt.Errorf("%s:%d: instruction %s is unknown to this test", path, n, instr)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(df.stages) < 2 {
		return nil, fmt.Errorf("%s: %d stages, want a builder and a runtime stage", path, len(df.stages))
	}

	return &df, nil
}

// dropFlags removes the leading --flag words of an instruction.
func dropFlags(words []string) []string {
	for len(words) > 0 && strings.HasPrefix(words[0], "--") {
		words = words[1:]
	}

	return words
}

// goBuild is the go build command of a RUN instruction.
type goBuild struct {
	env  map[string]string
	args []string // after "go build"
}

// parseGoBuild splits a RUN command of the form [NAME=value ...] go build
// ... into words, as sh would for the quoting it uses, expanding $NAME and
// ${NAME} from vars.
func parseGoBuild(run string, vars map[string]string) (goBuild, error) {
	words, err := shellWords(run, vars)
	if err != nil {
		return goBuild{}, err
	}
	b := goBuild{env: map[string]string{}}
	for len(words) > 0 && strings.Contains(words[0], "=") && !strings.HasPrefix(words[0], "-") {
		name, value, _ := strings.Cut(words[0], "=")
		b.env[name] = value
		words = words[1:]
	}
	if len(words) < 2 || words[0] != "go" || words[1] != "build" {
		return goBuild{}, fmt.Errorf("RUN %q is not [NAME=value...] go build ...", run)
	}
	b.args = words[2:]

	return b, nil
}

// shellWords splits s into words with sh's rules for blanks, single and
// double quotes and parameter expansion; anything else sh would treat
// specially is refused, as the test could not tell what it means.
func shellWords(s string, vars map[string]string) ([]string, error) {
	var (
		words []string
		cur   strings.Builder
		in    bool // inside a word
		quote rune
	)
	rs := []rune(s)
	for i := 0; i < len(rs); i++ {
		r := rs[i]
		switch {
		case quote == '\'' && r != '\'':
			cur.WriteRune(r)
		case r == '\'' || r == '"':
			if quote == r {
				quote = 0
			} else if quote == 0 {
				quote, in = r, true
			} else {
				cur.WriteRune(r)
			}
		case r == '$':
			name, n := varName(rs[i+1:])
			if name == "" {
				return nil, fmt.Errorf("cannot expand %q", string(rs[i:]))
			}
			v, ok := vars[name]
			if !ok {
				return nil, fmt.Errorf("$%s is not an ARG of the stage", name)
			}
			cur.WriteString(v)
			in, i = true, i+n
		case quote == 0 && (r == ' ' || r == '\t'):
			if in {
				words = append(words, cur.String())
				cur.Reset()
				in = false
			}
		case quote == 0 && strings.ContainsRune("\\;&|<>`()*?[]~#", r):
			return nil, fmt.Errorf("%q: the shell character %q is unknown to this test", s, r)
		default:
			cur.WriteRune(r)
			in = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("%q: unterminated quote", s)
	}
	if in {
		words = append(words, cur.String())
	}

	return words, nil
}

// varName reads NAME or {NAME} and returns it and the runes it took.
func varName(rs []rune) (string, int) {
	isName := func(r rune) bool {
		return r == '_' || r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9'
	}
	if len(rs) > 0 && rs[0] == '{' {
		end := slices.Index(rs, '}')
		if end < 2 || !allRunes(rs[1:end], isName) {
			return "", 0
		}
		return string(rs[1:end]), end + 1
	}
	n := 0
	for n < len(rs) && isName(rs[n]) {
		n++
	}

	return string(rs[:n]), n
}

func allRunes(rs []rune, f func(rune) bool) bool {
	for _, r := range rs {
		if !f(r) {
			return false
		}
	}

	return true
}

// flagValue returns the value of a go build flag given as "-f v" or
// "-f=v".
func flagValue(args []string, name string) (string, bool) {
	for i, a := range args {
		if a == name && i+1 < len(args) {
			return args[i+1], true
		}
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			return v, true
		}
	}

	return "", false
}

// testVersion is the VERSION build argument the tests build with.
const testVersion = "v0.0.0-dockerfile-test"

// readDockerfile parses the Dockerfile and checks the shape of its stages:
// a golang:1.26 builder and a distroless runtime that runs /yaci serve as
// a non-root user, with the binary the builder made.
func readDockerfile(t *testing.T) (builder, runtimeStage *stage, build goBuild) {
	t.Helper()
	df, err := parseDockerfile(filepath.Join(moduleRoot, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	builder, runtimeStage = df.stages[0], df.stages[len(df.stages)-1]

	if builder.image != "golang:1.26" {
		t.Errorf("builder image %q, want golang:1.26", builder.image)
	}
	if runtimeStage.image != "gcr.io/distroless/static:nonroot" {
		t.Errorf("runtime image %q, want gcr.io/distroless/static:nonroot", runtimeStage.image)
	}
	if uid, _, _ := strings.Cut(runtimeStage.user, ":"); uid == "" || uid == "0" || uid == "root" ||
		strings.Trim(uid, "0123456789") != "" {
		t.Errorf("USER %q, want a numeric non-root uid that runAsNonRoot can verify", runtimeStage.user)
	}
	if !slices.Equal(runtimeStage.entrypoint, []string{"/yaci"}) ||
		!slices.Equal(runtimeStage.cmd, []string{"serve"}) {
		t.Errorf("ENTRYPOINT %q CMD %q, want [/yaci] [serve]", runtimeStage.entrypoint, runtimeStage.cmd)
	}

	var runs []string
	for _, r := range builder.runs {
		if strings.Contains(r, "go build") {
			runs = append(runs, r)
		}
	}
	if len(runs) != 1 {
		t.Fatalf("builder stage has %d go build commands, want 1", len(runs))
	}
	vars := map[string]string{}
	for name, def := range builder.args {
		vars[name] = def
	}
	// What "docker build --build-arg VERSION=..." and BuildKit would set
	// for a build for this machine.
	vars["VERSION"], vars["TARGETOS"], vars["TARGETARCH"] = testVersion, runtime.GOOS, runtime.GOARCH
	if build, err = parseGoBuild(runs[0], vars); err != nil {
		t.Fatal(err)
	}

	if build.env["CGO_ENABLED"] != "0" {
		t.Errorf("go build runs with CGO_ENABLED=%q, want 0", build.env["CGO_ENABLED"])
	}
	if !slices.Contains(build.args, "-trimpath") {
		t.Errorf("go build %q lacks -trimpath", build.args)
	}
	ldflags, _ := flagValue(build.args, "-ldflags")
	if f := strings.Fields(ldflags); !slices.Contains(f, "-s") || !slices.Contains(f, "-w") ||
		!strings.Contains(ldflags, "-X main.version="+testVersion) {
		t.Errorf("-ldflags %q, want -s -w -X main.version=${VERSION}", ldflags)
	}
	if pkgs := build.args[len(build.args)-1]; pkgs != "./cmd/yaci" {
		t.Errorf("go build builds %q, want ./cmd/yaci", pkgs)
	}

	out, _ := flagValue(build.args, "-o")
	var copied bool
	for _, c := range runtimeStage.copies {
		copied = copied || len(c) == 3 && c[0] == "--from="+builder.name && c[1] == out &&
			c[2] == runtimeStage.entrypoint[0]
	}
	if !copied {
		t.Errorf("the runtime stage does not COPY --from=%s %s to its ENTRYPOINT %v",
			builder.name, out, runtimeStage.entrypoint)
	}

	return builder, runtimeStage, build
}

// buildImageBinary runs the Dockerfile's go build, with its environment and
// flags, on this machine, and returns the binary.
func buildImageBinary(t *testing.T, build goBuild) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "yaci")
	args := slices.Clone(build.args)
	for i, a := range args {
		if a == "-o" {
			args[i+1] = bin
		}
	}

	cmd := exec.CommandContext(t.Context(), "go", append([]string{"build"}, args...)...)
	cmd.Dir = moduleRoot
	cmd.Env = os.Environ()
	for name, value := range build.env {
		cmd.Env = append(cmd.Env, name+"="+value)
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %q: %v\n%s", args, err, out)
	}

	return bin
}

// TestDockerfile checks the Dockerfile's stages and build command without
// building; TestImageBinary builds.
func TestDockerfile(t *testing.T) {
	readDockerfile(t)
}

// TestImageBinary builds yaci exactly as the Dockerfile does and checks
// that the binary fits an image without a libc or a shell, then that the
// chart's Deployment can run it.
func TestImageBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds yaci: skipped with -short")
	}
	if runtime.GOOS != "linux" {
		t.Skip("the image is linux; this checks an ELF binary")
	}
	t.Parallel()
	_, _, build := readDockerfile(t)
	bin := buildImageBinary(t, build)

	t.Run("static", func(t *testing.T) {
		f, err := elf.Open(bin)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()

		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
				t.Errorf("binary has a %s program header: it needs a dynamic loader", p.Type)
			}
		}
		if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
			t.Errorf("binary needs shared libraries %q", libs)
		}
		if f.Section(".dynamic") != nil {
			t.Error("binary has a .dynamic section")
		}
		if f.Section(".symtab") != nil {
			t.Error("binary has a symbol table: -ldflags -s did not apply")
		}
	})

	t.Run("version", func(t *testing.T) {
		out, err := exec.CommandContext(t.Context(), bin, "version").CombinedOutput()
		if err != nil {
			t.Fatalf("yaci version: %v\n%s", err, out)
		}
		if got, want := string(out), "yaci "+testVersion+"\n"; got != want {
			t.Errorf("yaci version printed %q, want %q", got, want)
		}
	})

	t.Run("runs as the chart deploys it", func(t *testing.T) {
		runChartDeployment(t, bin)
	})
}

func TestDockerfileParser(t *testing.T) {
	vars := map[string]string{"V": "1.2", "OS": "linux"}
	tests := []struct {
		run     string
		want    []string
		wantErr bool
	}{
		{run: `A=1 go build -ldflags "-s -w -X main.version=${V}" -o /out/x ./cmd/x`,
			want: []string{"-ldflags", "-s -w -X main.version=1.2", "-o", "/out/x", "./cmd/x"}},
		{run: `GOOS=$OS go build -ldflags='-X a.b=$V' ./x`, want: []string{"-ldflags=-X a.b=$V", "./x"}},
		{run: `go build ./x && rm -rf /`, wantErr: true},
		{run: `go build -o $UNSET ./x`, wantErr: true},
		{run: `go vet ./...`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.run, func(t *testing.T) {
			b, err := parseGoBuild(tt.run, vars)
			if (err != nil) != tt.wantErr {
				t.Fatalf("error %v, want error %t", err, tt.wantErr)
			}
			if err == nil && !slices.Equal(b.args, tt.want) {
				t.Errorf("args %q, want %q", b.args, tt.want)
			}
		})
	}
}
