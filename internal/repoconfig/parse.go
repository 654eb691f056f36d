package repoconfig

import (
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// FileName is the name of the file yaci reads at the root of a
// repository.
const FileName = ".yaci.yml"

// Parse parses and validates the contents of a .yaci.yml. When the file
// has any problem it returns a nil Config and a *ParseError listing every
// problem found, each with its line and column.
func Parse(data []byte) (*Config, error) {
	if len(data) > MaxFileSize {
		return nil, &ParseError{Problems: []Problem{{1, 1, fmt.Sprintf(
			"file is %d bytes; at most %d are allowed", len(data), MaxFileSize)}}}
	}

	doc, problems := decodeDocument(data)
	p := &parser{problems: problems, names: make(map[string]int)}
	var cfg *Config
	if doc != nil {
		p.checkTree(doc, 0)
		cfg = p.config(doc)
	}
	if len(p.problems) > 0 {
		placeInFile(p.problems, splitLines(data))
		sortProblems(p.problems)
		return nil, &ParseError{Problems: p.problems}
	}

	return cfg, nil
}

// ParseFile reads and parses the file at path, for "yaci validate". A
// file it cannot read is an ordinary error; a file it rejects gives a
// *ParseError, whose Format adds the file name to each problem.
func ParseFile(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open config %s: %w", path, err)
	}
	defer f.Close()

	// One byte past the limit is enough for Parse to see the file is too
	// big without reading all of it.
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("read config %s: %w", path, err)
	}

	return Parse(data)
}

// parser collects the problems of one file while building its Config.
type parser struct {
	problems []Problem
	// names maps each job name seen so far to its line, for reporting a
	// duplicate next to the first use.
	names map[string]int
	// tooDeep is set once excessive nesting is reported, so a deep file
	// yields one problem rather than one per branch.
	tooDeep bool
}

// add records a problem at node n.
func (p *parser) add(n *yaml.Node, format string, args ...any) {
	p.check(n, fmt.Sprintf(format, args...))
}

// check records msg at node n unless msg is empty, so the shared rule
// functions read as one line each here.
func (p *parser) check(n *yaml.Node, msg string) {
	if msg != "" {
		p.problems = append(p.problems, Problem{max(n.Line, 1), max(n.Column, 1), msg})
	}
}

// unknownKey reports key k, which the mapping it is in does not take.
// The hint is the likely intended key, or else the list of keys.
func (p *parser) unknownKey(k *yaml.Node, where string, known []string) {
	hint := didYouMean(k.Value, known)
	if hint == "" {
		hint = "; want " + orList(known)
	}
	p.add(k, "unknown %s key %s%s", where, quote(k.Value), hint)
}

// orList writes words as "a, b or c".
func orList(words []string) string {
	if len(words) == 1 {
		return words[0]
	}

	return strings.Join(words[:len(words)-1], ", ") + " or " + words[len(words)-1]
}

// config checks the top level and builds the Config from it.
func (p *parser) config(doc *yaml.Node) *Config {
	root := doc
	if doc.Kind == yaml.DocumentNode && len(doc.Content) > 0 {
		root = doc.Content[0]
	}
	switch {
	case root.Kind == yaml.AliasNode:
		return nil
	case root.Kind == yaml.ScalarNode && root.Tag == "!!null":
		p.add(root, "file has no jobs: it needs a jobs list")
		return nil
	case root.Kind != yaml.MappingNode:
		p.add(root, "top level must be a mapping with a jobs list, got %s", kindName(root))
		return nil
	}

	var jobsKey, jobs *yaml.Node
	parallel := 0
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		switch {
		case !schemaKey(k):
		case k.Value == "jobs":
			jobsKey, jobs = k, v
		case k.Value == "parallel":
			parallel = p.parallel(v)
		default:
			p.unknownKey(k, "top-level", rootKeys)
		}
	}
	if jobs == nil {
		p.add(root, "jobs is required: list the jobs to run")
		return nil
	}

	return &Config{Jobs: p.jobs(jobsKey, jobs), Parallel: parallel}
}

// jobs checks the jobs list and each job in it.
func (p *parser) jobs(key, list *yaml.Node) []Job {
	switch {
	case list.Kind == yaml.AliasNode:
		return nil
	case list.Kind != yaml.SequenceNode:
		p.add(key, "jobs must be a list of jobs, got %s", kindName(list))
		return nil
	case len(list.Content) == 0:
		p.add(list, "jobs must list at least one job")
		return nil
	}

	jobs := make([]Job, 0, len(list.Content))
	for i, n := range list.Content {
		if i == MaxJobs {
			p.add(n, "too many jobs: at most %d are allowed, the file has %d",
				MaxJobs, len(list.Content))
		}
		jobs = append(jobs, p.job(n))
	}

	return jobs
}

// job checks one entry of the jobs list.
func (p *parser) job(n *yaml.Node) Job {
	var job Job
	switch {
	case n.Kind == yaml.AliasNode:
		return job
	case n.Kind != yaml.MappingNode:
		p.add(n, "job must be a mapping with name, image and run, got %s", kindName(n))
		return job
	}

	seen := make(map[string]bool, len(jobKeys))
	var branchesKey *yaml.Node
	merged := false
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if !schemaKey(k) {
			// A merge key was reported; what it would have merged in is
			// unknown, so missing keys are not reported on top of it.
			merged = merged || k.Tag == "!!merge"
			continue
		}
		seen[k.Value] = true
		switch k.Value {
		case "name":
			job.Name = p.name(k, v)
		case "image":
			if s, ok := p.requiredString(k, v); ok {
				p.check(v, checkImage(s))
				job.Image = s
			}
		case "run":
			if s, ok := p.requiredString(k, v); ok {
				p.check(v, checkRun(s))
				job.Run = s
			}
		case "env":
			job.Env = p.env(v)
		case "timeout":
			job.Timeout = p.timeout(v)
		case "on":
			job.On = p.on(k, v)
		case "branches":
			branchesKey = k
			job.Branches = p.branches(k, v)
		case "resources":
			job.Resources = p.resources(v)
		default:
			p.unknownKey(k, "job", jobKeys)
		}
	}

	for _, key := range []string{"name", "image", "run"} {
		if !seen[key] && !merged {
			p.add(n, "job is missing %s", key)
		}
	}
	if job.On == nil {
		job.On = append([]EventKind(nil), defaultOn...)
	}
	if branchesKey != nil {
		p.check(branchesKey, checkBranchesNeedPush(job.On, job.Branches))
	}

	return job
}

// name checks a job's name, including that no earlier job has it.
func (p *parser) name(k, v *yaml.Node) string {
	name, ok := p.requiredString(k, v)
	if !ok {
		return ""
	}
	if msg := checkName(name); msg != "" {
		p.check(v, msg)
		return name
	}
	if first, dup := p.names[name]; dup {
		p.add(v, "name %s is already used by the job at line %d", quote(name), first)
		return name
	}
	p.names[name] = v.Line

	return name
}

// scalar returns the text of a scalar value, as written: numbers and
// booleans keep their spelling, so "1.10" stays "1.10". It reports any
// other kind of value, naming it by label.
func (p *parser) scalar(label string, v *yaml.Node, want string) (string, bool) {
	switch {
	case v.Kind == yaml.AliasNode:
		return "", false
	case v.Kind != yaml.ScalarNode:
		p.add(v, "%s must be %s, got %s", label, want, kindName(v))
		return "", false
	}

	return v.Value, true
}

// requiredString is scalar for keys that must have a non-empty value.
func (p *parser) requiredString(k, v *yaml.Node) (string, bool) {
	if isNull(v) {
		p.add(k, "%s must not be empty", k.Value)
		return "", false
	}

	return p.scalar(k.Value, v, "a string")
}

// isNull reports whether v is YAML's null, written as nothing, "~" or
// "null". An optional key with a null value counts as absent.
func isNull(v *yaml.Node) bool {
	return v.Kind == yaml.ScalarNode && v.Tag == "!!null"
}

// env checks the env mapping, keeping the file's order.
func (p *parser) env(v *yaml.Node) []EnvVar {
	switch {
	case isNull(v), v.Kind == yaml.AliasNode:
		return nil
	case v.Kind != yaml.MappingNode:
		p.add(v, "env must be a mapping of names to values, got %s", kindName(v))
		return nil
	}

	env := make([]EnvVar, 0, len(v.Content)/2)
	for i := 0; i+1 < len(v.Content); i += 2 {
		name, val := v.Content[i], v.Content[i+1]
		if !schemaKey(name) {
			continue
		}
		p.check(name, checkEnvName(name.Value))
		env = append(env, EnvVar{Name: name.Value, Value: p.envValue(name, val)})
	}
	if len(env) == 0 {
		return nil
	}

	return env
}

// envValue returns an env value as text. Null is the empty string, the
// one way to write an empty value without quotes.
func (p *parser) envValue(name, v *yaml.Node) string {
	switch {
	case isNull(v), v.Kind == yaml.AliasNode:
		return ""
	case v.Kind != yaml.ScalarNode:
		p.add(v, "env %s must be a string, number or boolean, got %s",
			quote(name.Value), kindName(v))
		return ""
	}

	return v.Value
}

// parallel checks the most runs of the repository that run at once.
func (p *parser) parallel(v *yaml.Node) int {
	if isNull(v) {
		return 0
	}
	text, ok := p.scalar("parallel", v, "a whole number")
	if !ok {
		return 0
	}
	n, msg := parseParallel(text)
	p.check(v, msg)

	return n
}

// timeout checks a timeout such as "20m".
func (p *parser) timeout(v *yaml.Node) time.Duration {
	if isNull(v) {
		return 0
	}
	text, ok := p.scalar("timeout", v, "a duration like 20m")
	if !ok {
		return 0
	}
	d, msg := parseTimeout(text)
	p.check(v, msg)

	return d
}

// on checks the events a job runs on. A single word is a list of one;
// repeats are dropped, keeping the first.
func (p *parser) on(k, v *yaml.Node) []EventKind {
	var on []EventKind
	for _, w := range p.words(k, v, "push, pull_request or a list of them", "an event") {
		if msg := checkEvent(w.Value); msg != "" {
			p.check(w, msg)
			continue
		}
		if kind := EventKind(w.Value); !slices.Contains(on, kind) {
			on = append(on, kind)
		}
	}

	// When every word was wrong, on stays nil and the job gets the
	// default, so a single typo gives a single problem.
	return on
}

// branches checks the branch globs of a job.
func (p *parser) branches(k, v *yaml.Node) []string {
	var patterns []string
	for _, w := range p.words(k, v, "a pattern or a list of patterns", "a pattern") {
		p.check(w, checkBranch(w.Value))
		patterns = append(patterns, w.Value)
	}

	return patterns
}

// words reads a key that takes a list of strings or a single string,
// returning the scalar nodes. It returns none when the value is null
// (meaning "not set"), and reports anything else that is not a word;
// want and wantItem say what the key and each item should be.
func (p *parser) words(k, v *yaml.Node, want, wantItem string) []*yaml.Node {
	switch {
	case isNull(v), v.Kind == yaml.AliasNode:
		return nil
	case v.Kind == yaml.ScalarNode:
		return []*yaml.Node{v}
	case v.Kind != yaml.SequenceNode:
		p.add(v, "%s must be %s, got %s", k.Value, want, kindName(v))
		return nil
	case len(v.Content) == 0:
		p.add(v, "%s must not be an empty list; leave it out for the default", k.Value)
		return nil
	}

	words := make([]*yaml.Node, 0, len(v.Content))
	for _, item := range v.Content {
		switch {
		case item.Kind == yaml.AliasNode:
		case item.Kind != yaml.ScalarNode || isNull(item):
			p.add(item, "%s: each item must be %s, got %s", k.Value, wantItem, kindName(item))
		default:
			words = append(words, item)
		}
	}

	return words
}

// resources checks the cpu and memory a job asks for.
func (p *parser) resources(v *yaml.Node) Resources {
	var res Resources
	switch {
	case isNull(v), v.Kind == yaml.AliasNode:
		return res
	case v.Kind != yaml.MappingNode:
		p.add(v, "resources must be a mapping with cpu and memory, got %s", kindName(v))
		return res
	}

	for i := 0; i+1 < len(v.Content); i += 2 {
		rk, rv := v.Content[i], v.Content[i+1]
		if !schemaKey(rk) {
			continue
		}
		var dst *string
		switch rk.Value {
		case "cpu":
			dst = &res.CPU
		case "memory":
			dst = &res.Memory
		default:
			p.unknownKey(rk, "resources", resourceKeys)
			continue
		}
		if isNull(rv) {
			continue
		}
		text, ok := p.scalar("resources: "+rk.Value, rv, "a quantity")
		if !ok {
			continue
		}
		p.check(rv, checkQuantity(rk.Value, text, quantityExample[rk.Value]))
		*dst = text
	}

	return res
}
