package githubtest

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
)

// EnvOpenAPI names the environment variable that points at GitHub's OpenAPI
// description. When it is unset the fake looks for
// ../shared/testdata/github/api/github-rest.openapi.json beside the module
// root, and validates nothing when that is absent.
const EnvOpenAPI = "YACI_GITHUB_OPENAPI"

// sharedDescription is where the description lives relative to the module
// root, in the shared tree laid beside the repository.
var sharedDescription = filepath.Join("..", "shared", "testdata", "github", "api",
	"github-rest.openapi.json")

// spec is a loaded OpenAPI description with its operations ready to match
// requests against.
type spec struct {
	doc    *openapi3.T
	routes []specRoute
}

// specRoute is one documented operation. Its pattern matches an escaped
// request path and captures the path parameters, in names' order.
type specRoute struct {
	method  string
	path    string
	pattern *regexp.Regexp
	names   []string
	item    *openapi3.PathItem
	op      *openapi3.Operation
}

// specs caches loaded descriptions by file, since each is large and every
// test server of a package would otherwise parse it again.
var specs struct {
	sync.Mutex
	byPath map[string]*spec
}

// findDescription returns the path of GitHub's OpenAPI description, or ""
// when there is none to validate against.
func findDescription() (string, error) {
	if p := os.Getenv(EnvOpenAPI); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%s: %w", EnvOpenAPI, err)
		}
		return p, nil
	}

	root, err := moduleRoot()
	if err != nil {
		return "", nil
	}
	p := filepath.Join(root, sharedDescription)
	if _, err := os.Stat(p); err != nil {
		return "", nil
	}

	return p, nil
}

// moduleRoot walks up from the working directory, the package directory
// under go test, to the directory holding go.mod.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fs.ErrNotExist
		}
		dir = parent
	}
}

// loadSpec returns the description at path, parsing it on first use.
func loadSpec(path string) (*spec, error) {
	specs.Lock()
	defer specs.Unlock()
	if s, ok := specs.byPath[path]; ok {
		return s, nil
	}

	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromFile(path)
	if err != nil {
		return nil, fmt.Errorf("load openapi description %s: %w", path, err)
	}
	if err := doc.Validate(context.Background(), openapi3.DisableExamplesValidation()); err != nil {
		return nil, fmt.Errorf("openapi description %s: %w", path, err)
	}
	s, err := newSpec(doc)
	if err != nil {
		return nil, fmt.Errorf("openapi description %s: %w", path, err)
	}

	if specs.byPath == nil {
		specs.byPath = make(map[string]*spec)
	}
	specs.byPath[path] = s

	return s, nil
}

// paramRE finds the {name} parameters of a path template.
var paramRE = regexp.MustCompile(`\{([^{}/]+)\}`)

// newSpec prepares a matcher for every operation of doc. A parameter marked
// x-multi-segment, as the contents API's path is, may span slashes; others
// match one segment, as GitHub routes them.
func newSpec(doc *openapi3.T) (*spec, error) {
	s := &spec{doc: doc}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			r, err := newRoute(path, method, item, op)
			if err != nil {
				return nil, err
			}
			s.routes = append(s.routes, r)
		}
	}
	// Fewer parameters first, so /a/b wins over /a/{x}; then by path, so
	// that matching does not depend on map order.
	sort.Slice(s.routes, func(i, j int) bool {
		a, b := s.routes[i], s.routes[j]
		if na, nb := strings.Count(a.path, "{"), strings.Count(b.path, "{"); na != nb {
			return na < nb
		}
		return a.path+a.method < b.path+b.method
	})

	return s, nil
}

func newRoute(path, method string, item *openapi3.PathItem, op *openapi3.Operation) (specRoute, error) {
	r := specRoute{method: method, path: path, item: item, op: op}
	var re strings.Builder
	re.WriteString("^")
	last := 0
	for _, m := range paramRE.FindAllStringSubmatchIndex(path, -1) {
		name := path[m[2]:m[3]]
		re.WriteString(regexp.QuoteMeta(path[last:m[0]]))
		re.WriteString(segmentPattern(op, item, name))
		r.names = append(r.names, name)
		last = m[1]
	}
	re.WriteString(regexp.QuoteMeta(path[last:]))
	re.WriteString("$")

	var err error
	r.pattern, err = regexp.Compile(re.String())
	return r, err
}

// segmentPattern is the regular expression a path parameter's value
// matches.
func segmentPattern(op *openapi3.Operation, item *openapi3.PathItem, name string) string {
	p := op.Parameters.GetByInAndName(openapi3.ParameterInPath, name)
	if p == nil {
		p = item.Parameters.GetByInAndName(openapi3.ParameterInPath, name)
	}
	if p != nil && p.Extensions["x-multi-segment"] == true {
		return "(.+)"
	}
	return "([^/]+)"
}

// errUndocumented reports a request no operation of the description
// matches.
var errUndocumented = errors.New("no operation in GitHub's OpenAPI description matches it")

// match finds the documented operation for a request and its path
// parameters.
func (s *spec) match(r *http.Request) (*routers.Route, map[string]string, error) {
	path := r.URL.EscapedPath()
	for _, sr := range s.routes {
		if sr.method != r.Method {
			continue
		}
		m := sr.pattern.FindStringSubmatch(path)
		if m == nil {
			continue
		}
		params := make(map[string]string, len(sr.names))
		for i, name := range sr.names {
			v, err := url.PathUnescape(m[i+1])
			if err != nil {
				return nil, nil, fmt.Errorf("path parameter %s: %w", name, err)
			}
			params[name] = v
		}
		route := &routers.Route{
			Spec: s.doc, Path: sr.path, PathItem: sr.item, Method: sr.method, Operation: sr.op,
		}
		return route, params, nil
	}

	return nil, nil, errUndocumented
}

// validateRequest checks a request against the description: that it is a
// documented operation, and that its path and query parameters and JSON
// body match the operation's schemas. It leaves the body readable.
func (s *spec) validateRequest(r *http.Request) error {
	route, params, err := s.match(r)
	if err != nil {
		return err
	}

	in := &openapi3filter.RequestValidationInput{
		Request:    r,
		PathParams: params,
		Route:      route,
		Options: &openapi3filter.Options{
			AuthenticationFunc:  openapi3filter.NoopAuthenticationFunc,
			MultiError:          true,
			SkipSettingDefaults: true,
		},
	}
	if err := openapi3filter.ValidateRequest(r.Context(), in); err != nil {
		return fmt.Errorf("operation %s: %w", route.Operation.OperationID, err)
	}

	return nil
}
