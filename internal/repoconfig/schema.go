package repoconfig

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
)

// SchemaFile is the JSON Schema of .yaci.yml that Schema generates, as
// committed next to this file. Editors fetch it from the repository by
// the URL in SchemaID.
const SchemaFile = "schema.json"

// SchemaID is the schema's $id: the address of the committed file on the
// main branch, which is also what a .yaci.yml names in its
// "# yaml-language-server: $schema=" line.
const SchemaID = "https://raw.githubusercontent.com/yaci-ci/yaci/main/internal/repoconfig/" +
	SchemaFile

// The schema is draft-07 because that is the newest draft the YAML
// language server (and with it VS Code, Neovim and the JetBrains IDEs
// through SchemaStore) validates fully; its support for 2019-09 and
// 2020-12 came and was reverted. Nothing below needs a later draft.
const schemaDraft = "http://json-schema.org/draft-07/schema#"

// Patterns the parser's rules come down to, in the ECMA-262 subset that
// both editors and Go's regexp understand. Each is tested against the
// parser's own check on sample values.
const (
	// imagePattern is a non-empty reference without whitespace.
	imagePattern = `^\S+$`
	// runPattern asks for one character that is not whitespace.
	runPattern = `\S`
	// durationPattern is time.ParseDuration's syntax without a sign.
	durationPattern = `^\+?(([0-9]+(\.[0-9]*)?|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h))+$`
	// zeroDurationPattern matches the durations that are zero.
	zeroDurationPattern = `^\+?((0+(\.0*)?|\.0+)(ns|us|µs|μs|ms|s|m|h))+$`
	// quantityPattern is Kubernetes' quantity syntax without a sign.
	quantityPattern = `^\+?([0-9]+(\.[0-9]*)?|\.[0-9]+)([KMGTPE]i|[mkMGTPE]|[eE][-+]?[0-9]+)?$`
	// zeroQuantityPattern matches the quantities that are zero.
	zeroQuantityPattern = `^\+?(0+(\.0*)?|\.0+)([KMGTPE]i|[mkMGTPE]|[eE][-+]?[0-9]+)?$`
	// reservedEnvPattern matches the env names yaci sets itself.
	reservedEnvPattern = `^(CI|HOME|YACI|YACI_.*)$`
)

// Schema returns the JSON Schema of .yaci.yml, indented and ending in a
// newline, exactly as committed in SchemaFile. It is built from the Go
// types of this package: each level's keys are the fields of Config, Job
// and Resources, and generation fails if they and the parser's key lists
// or the schema's descriptions fall out of step. The schema carries every
// rule of Parse that JSON Schema can state; what it cannot (YAML-level
// rules such as anchors and duplicate keys, unique job names, the 24h cap
// on timeouts, valid globs) only Parse and "yaci validate" report.
func Schema() ([]byte, error) {
	job, err := objectOf(reflect.TypeFor[Job](), jobKeys, jobProperties())
	if err != nil {
		return nil, err
	}
	job.Description = "One job: a container image and a script, run as one Kubernetes " +
		"Job for each push or pull request it matches."
	job.Required = []string{"name", "image", "run"}
	job.If, job.Then = branchesNeedPush()

	root, err := objectOf(reflect.TypeFor[Config](), rootKeys, map[string]*schema{
		"jobs": {
			Description: fmt.Sprintf("The jobs to run, at most %d. Each reports its own "+
				"commit status, in this order.", MaxJobs),
			Type:     "array",
			MinItems: ptr(1),
			MaxItems: ptr(MaxJobs),
			Items:    &schema{Ref: "#/definitions/job"},
		},
		"parallel": {
			Description: fmt.Sprintf("The most runs of this repository that run at once, "+
				"1 to %d. It can lower the server's per-repository limit, never raise it.",
				MaxParallel),
			Type:    "integer",
			Minimum: ptr(1),
			Maximum: ptr(MaxParallel),
		},
	})
	if err != nil {
		return nil, err
	}
	root.Schema, root.ID = schemaDraft, SchemaID
	root.Title = "yaci configuration (.yaci.yml)"
	root.Description = "The jobs yaci runs for a push or a pull request to this repository."
	root.Required = []string{"jobs"}
	root.Definitions = props{{"job", job}, {"event", eventSchema()}}

	return marshalSchema(root)
}

// objectOf returns a closed object schema whose properties are the fields
// of struct type t, named as the file writes them (the field name in
// lower case), in the order of keys, the parser's list for that level.
func objectOf(t reflect.Type, keys []string, bodies map[string]*schema) (*schema, error) {
	var fields []string
	for f := range t.Fields() {
		fields = append(fields, strings.ToLower(f.Name))
	}
	if !sameSet(fields, keys) {
		return nil, fmt.Errorf("schema of %s: fields %v differ from the parser's keys %v",
			t.Name(), fields, keys)
	}

	o := &schema{Type: "object", AdditionalProperties: false}
	for _, key := range keys {
		body, ok := bodies[key]
		if !ok {
			return nil, fmt.Errorf("schema of %s: key %q has no schema", t.Name(), key)
		}
		o.Properties = append(o.Properties, prop{key, body})
	}
	if len(bodies) != len(keys) {
		return nil, fmt.Errorf("schema of %s: %d schemas for %d keys",
			t.Name(), len(bodies), len(keys))
	}

	return o, nil
}

// sameSet reports whether a and b hold the same words, in any order.
func sameSet(a, b []string) bool {
	return len(a) == len(b) && !slices.ContainsFunc(a, func(s string) bool {
		return !slices.Contains(b, s)
	})
}

// jobProperties returns the schema of each key of a job.
func jobProperties() map[string]*schema {
	resources, err := objectOf(reflect.TypeFor[Resources](), resourceKeys,
		map[string]*schema{
			"cpu":    quantity("CPU", "cores or millicores", "500m", "2"),
			"memory": quantity("Memory", "bytes with a suffix", "512Mi", "2Gi"),
		})
	if err != nil {
		// The Resources type and resourceKeys are fixed together in this
		// package; the schema test catches a mismatch before a release.
		panic(err)
	}
	resources.Type = []string{"object", "null"}
	resources.Description = "CPU and memory the job asks for, each both request and limit. " +
		"Unset values get the server's defaults."

	return map[string]*schema{
		"name": {
			Description: fmt.Sprintf("The job's name, shown in the commit status "+
				"(yaci/push/NAME). Lowercase letters, digits and '-', starting and ending "+
				"with a letter or digit, at most %d characters, unique in the file.",
				MaxNameLength),
			Type:      "string",
			MinLength: ptr(1),
			MaxLength: ptr(MaxNameLength),
			Pattern:   dnsLabel.String(),
			PatternErrorMessage: "use lowercase letters, digits and '-', " +
				"starting and ending with a letter or digit",
			Examples: []any{"test", "lint", "build-docs"},
		},
		"image": {
			Description: "The container image the script runs in, " +
				"as a Kubernetes pod would pull it.",
			Type:                "string",
			MinLength:           ptr(1),
			Pattern:             imagePattern,
			PatternErrorMessage: "an image reference has no whitespace",
			Examples:            []any{"golang:1.26", "node:22-alpine"},
		},
		"run": {
			Description: "The script, run by \"sh -e -c\" in the checked-out commit: " +
				"the first failing command fails the job. Event data (branch, title, " +
				"message) is in YACI_* environment variables, never in the script.",
			Type:                "string",
			Pattern:             runPattern,
			PatternErrorMessage: "run must not be empty",
		},
		"env": {
			Description: "Environment variables for the script. Values are taken as " +
				"written (1.10 stays 1.10); a name with no value is the empty string. " +
				"CI, HOME, YACI and YACI_* are set by yaci.",
			Type: []string{"object", "null"},
			PropertyNames: &schema{
				Pattern:             envName.String(),
				PatternErrorMessage: "use letters, digits and '_', not starting with a digit",
				Not:                 &schema{Pattern: reservedEnvPattern},
				ErrorMessage:        "CI, HOME, YACI and YACI_* are set by yaci",
			},
			AdditionalProperties: &schema{Type: []string{"string", "number", "boolean", "null"}},
		},
		"timeout": {
			Description: "How long the job may run, as a duration like 90s, 20m or " +
				"1h30m; at most 24h, and the server may cap it lower. Unset, the " +
				"server's default applies.",
			Type:                []string{"string", "null"},
			Pattern:             durationPattern,
			PatternErrorMessage: "a positive duration like 90s, 20m or 1h30m",
			Not:                 &schema{Type: "string", Pattern: zeroDurationPattern},
			ErrorMessage:        "timeout must be a positive duration like 90s, 20m or 1h30m",
			Examples:            []any{"20m", "1h30m"},
		},
		"on": {
			Description: "The events the job runs on: push, pull_request or a list of " +
				"them. Unset, both.",
			AnyOf: []*schema{
				{Ref: "#/definitions/event"},
				{
					Type:     "array",
					MinItems: ptr(1),
					Items:    &schema{Ref: "#/definitions/event"},
				},
				{Type: "null"},
			},
		},
		"branches": {
			Description: "Glob patterns (path.Match: *, ?, [a-z]) of the branches whose " +
				"pushes run the job. Pull requests are not filtered. Unset, every branch.",
			Type:      []string{"string", "array", "null"},
			MinLength: ptr(1),
			MinItems:  ptr(1),
			Items:     &schema{Type: "string", MinLength: ptr(1)},
			Examples:  []any{"main", []any{"main", "release/*"}},
		},
		"resources": resources,
	}
}

// eventSchema returns the schema of one word of on.
func eventSchema() *schema {
	return &schema{
		Type: "string",
		Enum: []any{string(EventPush), string(EventPullRequest)},
		EnumDescriptions: []string{
			"A push to a branch of this repository.",
			"A pull request opened, reopened or updated with new commits.",
		},
	}
}

// quantity returns the schema of a resources value.
func quantity(what, unit string, examples ...any) *schema {
	msg := fmt.Sprintf("a positive Kubernetes quantity like %s or %s", examples...)

	return &schema{
		Description: fmt.Sprintf("%s, in %s, as a Kubernetes quantity (%s or %s).",
			what, unit, examples[0], examples[1]),
		Type:                []string{"string", "number", "null"},
		Pattern:             quantityPattern,
		PatternErrorMessage: msg,
		Not:                 &schema{Type: "string", Pattern: zeroQuantityPattern},
		ErrorMessage:        msg,
		ExclusiveMinimum:    ptr(0),
		Examples:            examples,
	}
}

// branchesNeedPush states checkBranchesNeedPush: a job that sets both
// branches and on must run on push.
func branchesNeedPush() (ifSchema, thenSchema *schema) {
	notNull := &schema{Not: &schema{Type: "null"}}
	ifSchema = &schema{
		Required:   []string{"branches", "on"},
		Properties: props{{"branches", notNull}, {"on", notNull}},
	}
	thenSchema = &schema{Properties: props{{"on", &schema{
		AnyOf: []*schema{
			{Const: string(EventPush)},
			{Type: "array", Contains: &schema{Const: string(EventPush)}},
		},
		ErrorMessage: "branches filters push events only, so on must include push",
	}}}}

	return ifSchema, thenSchema
}

// marshalSchema writes s as the committed file: two-space indents, no
// HTML escaping (patterns hold < and >), a final newline.
func marshalSchema(s *schema) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(s); err != nil {
		return nil, fmt.Errorf("encode schema: %w", err)
	}

	return buf.Bytes(), nil
}

// schema is the part of JSON Schema draft-07 the file uses, in the order
// a reader of the generated file wants the keywords. ErrorMessage,
// PatternErrorMessage and EnumDescriptions are the YAML and JSON language
// servers' extensions for friendlier messages (ErrorMessage replaces
// their message for a wrong type or a matching "not"); validators ignore
// them.
type schema struct {
	Schema      string `json:"$schema,omitempty"`
	ID          string `json:"$id,omitempty"`
	Ref         string `json:"$ref,omitempty"`
	Title       string `json:"title,omitempty"`
	Description string `json:"description,omitempty"`
	// Type is a string or a list of strings.
	Type             any      `json:"type,omitempty"`
	Const            any      `json:"const,omitempty"`
	Enum             []any    `json:"enum,omitempty"`
	EnumDescriptions []string `json:"enumDescriptions,omitempty"`

	MinLength           *int   `json:"minLength,omitempty"`
	MaxLength           *int   `json:"maxLength,omitempty"`
	Pattern             string `json:"pattern,omitempty"`
	PatternErrorMessage string `json:"patternErrorMessage,omitempty"`
	ExclusiveMinimum    *int   `json:"exclusiveMinimum,omitempty"`
	Minimum             *int   `json:"minimum,omitempty"`
	Maximum             *int   `json:"maximum,omitempty"`

	MinItems *int    `json:"minItems,omitempty"`
	MaxItems *int    `json:"maxItems,omitempty"`
	Items    *schema `json:"items,omitempty"`
	Contains *schema `json:"contains,omitempty"`

	Required      []string `json:"required,omitempty"`
	Properties    props    `json:"properties,omitempty"`
	PropertyNames *schema  `json:"propertyNames,omitempty"`
	// AdditionalProperties is false or a *schema.
	AdditionalProperties any `json:"additionalProperties,omitempty"`

	AnyOf        []*schema `json:"anyOf,omitempty"`
	Not          *schema   `json:"not,omitempty"`
	If           *schema   `json:"if,omitempty"`
	Then         *schema   `json:"then,omitempty"`
	ErrorMessage string    `json:"errorMessage,omitempty"`
	Examples     []any     `json:"examples,omitempty"`
	Definitions  props     `json:"definitions,omitempty"`
}

// prop is one named schema of an object's properties or definitions.
type prop struct {
	name   string
	schema *schema
}

// props keeps properties in the order of the file's documentation, which
// a map would lose; editors list completions in this order.
type props []prop

// MarshalJSON writes the properties as one JSON object, in order.
func (ps props) MarshalJSON() ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteByte('{')
	for i, p := range ps {
		if i > 0 {
			buf.WriteByte(',')
		}
		// An Encoder, not Marshal, so that patterns are not HTML-escaped
		// in nested objects either.
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(p.name); err != nil {
			return nil, err
		}
		buf.Truncate(buf.Len() - 1) // Encode's newline
		buf.WriteByte(':')
		if err := enc.Encode(p.schema); err != nil {
			return nil, err
		}
		buf.Truncate(buf.Len() - 1)
	}
	buf.WriteByte('}')

	return buf.Bytes(), nil
}

func ptr[T any](v T) *T { return &v }
