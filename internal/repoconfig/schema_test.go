package repoconfig

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"go.yaml.in/yaml/v3"
)

var updateSchema = flag.Bool("update-schema", false, "rewrite "+SchemaFile+" from the Go types")

// TestSchemaCommitted fails when the committed schema.json is not what
// Schema generates from the types, so the file editors fetch cannot
// drift from the parser. Run with -update-schema to rewrite it.
func TestSchemaCommitted(t *testing.T) {
	want, err := Schema()
	if err != nil {
		t.Fatalf("Schema: %v", err)
	}
	if *updateSchema {
		if err := os.WriteFile(SchemaFile, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	got, err := os.ReadFile(SchemaFile)
	if err != nil {
		t.Fatalf("read committed schema (generate it with -update-schema): %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from Schema(); rerun with -update-schema if the change is right",
			SchemaFile)
	}
}

// TestSchemaKeysFollowTypes checks that the generator refuses a struct
// whose fields do not match the parser's keys, the guard that makes a
// new Job field fail generation until it has a schema.
func TestSchemaKeysFollowTypes(t *testing.T) {
	type twoFields struct{ Name, Image string }
	body := map[string]*schema{"name": {}, "image": {}}
	tests := []struct {
		name   string
		keys   []string
		bodies map[string]*schema
		ok     bool
	}{
		{"matching", []string{"name", "image"}, body, true},
		{"key without field", []string{"name", "image", "run"}, body, false},
		{"field without key", []string{"name"}, body, false},
		{"key without schema", []string{"name", "image"}, map[string]*schema{"name": {}}, false},
		{"schema without key", []string{"name", "image"},
			map[string]*schema{"name": {}, "image": {}, "run": {}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := objectOf(reflect.TypeFor[twoFields](), tt.keys, tt.bodies)
			if got := err == nil; got != tt.ok {
				t.Fatalf("objectOf: err = %v, want ok = %v", err, tt.ok)
			}
			if tt.ok && (len(o.Properties) != 2 || o.Properties[0].name != "name") {
				t.Errorf("properties = %+v, want name then image", o.Properties)
			}
		})
	}
}

// TestSchemaFixtures validates the parser's own fixtures against the
// committed schema: every valid file passes, and every invalid file
// fails unless its only faults are ones JSON Schema cannot state.
func TestSchemaFixtures(t *testing.T) {
	sch := compileSchema(t)

	// Invalid fixtures the schema accepts, and why it cannot see the
	// fault. Everything else under testdata/invalid must fail it.
	blind := map[string]string{
		"duplicate-names.yml":   "unique names are not expressible over objects",
		"multi-doc.yml":         "a schema sees the first document only",
		"second-doc-syntax.yml": "a schema sees the first document only",
		"tags.yml":              "tags are YAML, not data",
	}

	files, err := filepath.Glob(filepath.Join("testdata", "*", "*.yml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	for _, file := range files {
		valid := filepath.Base(filepath.Dir(file)) == "valid"
		name := filepath.Base(file)
		t.Run(strings.TrimSuffix(filepath.ToSlash(file), ".yml"), func(t *testing.T) {
			inst, err := yamlInstance(readFile(t, file))
			if err != nil {
				if valid {
					t.Fatalf("decode valid fixture: %v", err)
				}
				// An editor's YAML parser flags these before any schema.
				t.Logf("not YAML a schema can see: %v", err)
				return
			}
			err = sch.Validate(inst)
			switch reason, isBlind := blind[name]; {
			case valid && err != nil:
				t.Errorf("schema rejects a valid file:\n%v", err)
			case !valid && isBlind && err == nil:
				t.Logf("schema accepts it: %s", reason)
			case !valid && isBlind:
				t.Errorf("schema now rejects it; drop it from the blind list:\n%v", err)
			case !valid && err == nil:
				t.Error("schema accepts a file the parser rejects")
			}
		})
	}
}

// TestSchemaRules checks single rules: each snippet is one job with one
// fault (or none), judged by both the parser and the schema.
func TestSchemaRules(t *testing.T) {
	sch := compileSchema(t)
	job := func(extra string) string {
		return "jobs:\n  - name: test\n    image: alpine\n    run: make\n" + extra
	}
	jobs := func(n int) string {
		var b strings.Builder
		b.WriteString("jobs:\n")
		for i := range n {
			b.WriteString("  - {name: j" + strings.Repeat("x", i%5) + string(rune('a'+i%26)) +
				"-" + strings.Repeat("y", i/26) + "z, image: alpine, run: make}\n")
		}
		return b.String()
	}

	tests := []struct {
		name string
		yaml string
		// schema is the schema's verdict; the parser's is always given
		// by parser, which differs only for the gaps listed at the end.
		parser, schema bool
	}{
		{"minimal", job(""), true, true},
		{"every key", job("    env: {A: 1, B: true, C: x, D: ~}\n    timeout: 1h30m\n" +
			"    on: [push]\n    branches: main\n    resources: {cpu: 2, memory: 1Gi}\n"), true, true},
		{"nulls", job("    env: ~\n    timeout: ~\n    on: ~\n    branches: ~\n    resources: ~\n"),
			true, true},
		{"branches with null on", job("    on: ~\n    branches: [main]\n"), true, true},
		{"thirty-two jobs", jobs(MaxJobs), true, true},

		{"unknown root key", "version: 1\n" + job(""), false, false},
		{"unknown job key", job("    needs: lint\n"), false, false},
		{"unknown resources key", job("    resources: {gpu: 1}\n"), false, false},
		{"missing run", "jobs:\n  - {name: a, image: b}\n", false, false},
		{"null name", "jobs:\n  - {name: ~, image: b, run: c}\n", false, false},
		{"no jobs", "jobs: []\n", false, false},
		{"thirty-three jobs", jobs(MaxJobs + 1), false, false},
		{"upper-case name", "jobs:\n  - {name: Test, image: b, run: c}\n", false, false},
		{"long name", "jobs:\n  - {name: " + strings.Repeat("a", MaxNameLength+1) +
			", image: b, run: c}\n", false, false},
		{"image with space", "jobs:\n  - {name: a, image: golang 1.26, run: c}\n", false, false},
		{"blank run", "jobs:\n  - {name: a, image: b, run: '  '}\n", false, false},
		{"unknown event", job("    on: tag\n"), false, false},
		{"empty on", job("    on: []\n"), false, false},
		{"event item list", job("    on: [[push]]\n"), false, false},
		{"env CI", job("    env: {CI: x}\n"), false, false},
		{"env YACI", job("    env: {YACI: x}\n"), false, false},
		{"env YACI_X", job("    env: {YACI_X: x}\n"), false, false},
		{"env bad name", job("    env: {1A: x}\n"), false, false},
		{"env list value", job("    env: {A: [1]}\n"), false, false},
		{"timeout number", job("    timeout: 20\n"), false, false},
		{"timeout zero", job("    timeout: 0s\n"), false, false},
		{"timeout negative", job("    timeout: -5m\n"), false, false},
		{"cpu zero", job("    resources: {cpu: 0}\n"), false, false},
		{"memory zero", job("    resources: {memory: 0Mi}\n"), false, false},
		{"cpu word", job("    resources: {cpu: lots}\n"), false, false},
		{"branches without push", job("    on: pull_request\n    branches: [main]\n"),
			false, false},
		{"empty branches", job("    branches: []\n"), false, false},
		{"empty pattern", job("    branches: ['']\n"), false, false},

		// Gaps: rules JSON Schema cannot state. Pinned so that a schema
		// that starts catching one moves it up.
		{"gap: duplicate names", "jobs:\n  - {name: a, image: b, run: c}\n" +
			"  - {name: a, image: b, run: c}\n", false, true},
		{"gap: timeout over 24h", job("    timeout: 25h\n"), false, true},
		{"gap: invalid glob", job("    branches: ['[main']\n"), false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, perr := Parse([]byte(tt.yaml))
			if got := perr == nil; got != tt.parser {
				t.Errorf("parser accepts = %v, want %v (%v)", got, tt.parser, perr)
			}
			inst, err := yamlInstance([]byte(tt.yaml))
			if err != nil {
				t.Fatal(err)
			}
			serr := sch.Validate(inst)
			if got := serr == nil; got != tt.schema {
				t.Errorf("schema accepts = %v, want %v (%v)", got, tt.schema, serr)
			}
		})
	}
}

// TestSchemaPatterns checks each pattern against the parser's own check
// of the same value, so the two agree on more than the fixtures.
func TestSchemaPatterns(t *testing.T) {
	match := func(pattern string) func(string) bool {
		re := regexp.MustCompile(pattern)
		return re.MatchString
	}
	durationOK, zeroDuration := match(durationPattern), match(zeroDurationPattern)
	quantityOK, zeroQuantity := match(quantityPattern), match(zeroQuantityPattern)
	envOK, reserved := match(envName.String()), match(reservedEnvPattern)
	nameOK, imageOK, runOK := match(dnsLabel.String()), match(imagePattern), match(runPattern)

	tests := []struct {
		rule    string
		schema  func(string) bool
		parser  func(string) string
		samples []string
	}{
		{
			"timeout",
			func(s string) bool { return durationOK(s) && !zeroDuration(s) },
			func(s string) string { _, msg := parseTimeout(s); return msg },
			[]string{"20m", "1h30m", "90s", "1.5h", ".5s", "5.s", "+5m", "300ms", "5us",
				"5µs", "5μs", "2ns", "24h", "0.1s", "1h0m0s", "0s", "0", "0h0m", "0.0s",
				".0m", "-5m", "20", "ten", "", "1e3s", "5 m", "m", ".s", "1d"},
		},
		{
			"quantity",
			func(s string) bool { return quantityOK(s) && !zeroQuantity(s) },
			func(s string) string { return checkQuantity("cpu", s, "") },
			[]string{"500m", "2", "0.5", "1.", ".5", "+1", "1Gi", "512Mi", "1Ki", "1k",
				"1M", "1E", "1Ei", "1e3", "1E3", "1e-3", "2e+2", "0", "0Mi", "0.0", "0e3",
				"-1Gi", "1K", "1ki", "1 Gi", "lots", "", ".", "1Gi ", "1mi", "1.5.5"},
		},
		{
			"env name",
			func(s string) bool { return envOK(s) && !reserved(s) },
			checkEnvName,
			[]string{"GOFLAGS", "_x", "a1", "yaci_lower", "YACIFOO", "ci", "home", "1BAD",
				"WITH-DASH", "", "A B", "CI", "HOME", "YACI", "YACI_", "YACI_TOKEN", "ÜBER"},
		},
		{
			"name",
			func(s string) bool { return nameOK(s) && len(s) <= MaxNameLength },
			checkName,
			[]string{"test", "a", "1", "a-b", "a--b", strings.Repeat("a", MaxNameLength),
				strings.Repeat("a", MaxNameLength+1), "", "Test", "-a", "a-", "a_b", "a.b"},
		},
		{"image", imageOK, checkImage,
			[]string{"alpine", "golang:1.26", "r.io/a/b@sha256:00", "", "golang 1.26",
				"a\tb", " a", "a\n"}},
		{"run", runOK, checkRun, []string{"make", " make ", "\n\tx", "", " ", "\n\t "}},
	}
	for _, tt := range tests {
		t.Run(tt.rule, func(t *testing.T) {
			for _, s := range tt.samples {
				if schemaOK, parserOK := tt.schema(s), tt.parser(s) == ""; schemaOK != parserOK {
					t.Errorf("%q: schema accepts = %v, parser accepts = %v",
						s, schemaOK, parserOK)
				}
			}
		})
	}
}

// compileSchema compiles the committed schema, which also checks it
// against the draft-07 meta-schema.
func compileSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(readFile(t, SchemaFile)))
	if err != nil {
		t.Fatalf("decode %s: %v", SchemaFile, err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource(SchemaID, doc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile(SchemaID)
	if err != nil {
		t.Fatalf("compile %s: %v", SchemaFile, err)
	}

	return sch
}

// yamlInstance turns a YAML file into the JSON value an editor's YAML
// language server validates: YAML 1.2 scalars, so 1.10 is a number and
// "on" a string.
func yamlInstance(data []byte) (any, error) {
	var v any
	if err := yaml.Unmarshal(data, &v); err != nil {
		return nil, err
	}
	j, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}

	return jsonschema.UnmarshalJSON(bytes.NewReader(j))
}
