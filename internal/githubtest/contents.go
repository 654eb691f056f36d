package githubtest

import (
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strings"
)

// DefaultBranch is the ref the fake reads when a request names none.
const DefaultBranch = "main"

// LargeFile is the size above which the contents API leaves a file's
// content out of its JSON answer (encoding "none") and only the raw media
// type returns it.
const LargeFile = 1 << 20

// docsGetContent is the documentation link of the contents API's errors.
const docsGetContent = "https://docs.github.com/rest/repos/contents#get-repository-content"

// fileKey names a file at a ref. Owner and repo are kept in lower case:
// GitHub does not tell them apart by case.
type fileKey struct {
	owner, repo, ref, path string
}

func newFileKey(owner, repo, ref, p string) fileKey {
	if ref == "" {
		ref = DefaultBranch
	}
	return fileKey{
		owner: strings.ToLower(owner), repo: strings.ToLower(repo),
		ref: ref, path: strings.Trim(p, "/"),
	}
}

// SetFile puts a file at path in owner/repo at ref, a branch, tag or
// commit sha; an empty ref means DefaultBranch. A nil content removes it.
func (s *Server) SetFile(owner, repo, ref, p string, content []byte) {
	k := newFileKey(owner, repo, ref, p)

	s.mu.Lock()
	defer s.mu.Unlock()
	if content == nil {
		delete(s.files, k)
		return
	}
	s.files[k] = slices.Clone(content)
}

// contentLinks is the _links object of a content entry.
type contentLinks struct {
	Self string `json:"self"`
	Git  string `json:"git"`
	HTML string `json:"html"`
}

// contentEntry is GitHub's content-file schema, and an item of the
// content-directory one.
type contentEntry struct {
	Type        string       `json:"type"`
	Encoding    string       `json:"encoding,omitempty"`
	Size        int          `json:"size"`
	Name        string       `json:"name"`
	Path        string       `json:"path"`
	Content     *string      `json:"content,omitempty"`
	SHA         string       `json:"sha"`
	URL         string       `json:"url"`
	GitURL      string       `json:"git_url"`
	HTMLURL     string       `json:"html_url"`
	DownloadURL *string      `json:"download_url"`
	Links       contentLinks `json:"_links"`
}

// getContent serves GET /repos/{owner}/{repo}/contents/{path}.
func (s *Server) getContent(w http.ResponseWriter, r *http.Request) {
	owner, repo := r.PathValue("owner"), r.PathValue("repo")
	if !s.authorize(w, r, repo, "contents", "read") {
		return
	}
	k := newFileKey(owner, repo, r.URL.Query().Get("ref"), r.PathValue("path"))

	s.mu.Lock()
	content, ok := s.files[k]
	var dir []fileKey
	if !ok {
		dir = s.dirLocked(k)
	}
	s.mu.Unlock()

	switch {
	case ok && wantsRaw(r):
		s.serveRaw(w, r, content)
	case ok:
		s.serveRepresentation(w, r, s.fileEntry(k, content, true))
	case len(dir) > 0:
		entries := make([]contentEntry, 0, len(dir))
		for _, child := range dir {
			entries = append(entries, s.childEntry(k, child))
		}
		s.serveRepresentation(w, r, entries)
	default:
		s.notFound(w, docsGetContent)
	}
}

// dirLocked returns the files and subdirectories directly under k.path,
// sorted, or nothing when k names no directory. s.mu must be held.
func (s *Server) dirLocked(k fileKey) []fileKey {
	prefix := k.path + "/"
	if k.path == "" {
		prefix = ""
	}
	seen := map[fileKey]bool{}
	for f := range s.files {
		if f.owner != k.owner || f.repo != k.repo || f.ref != k.ref ||
			!strings.HasPrefix(f.path, prefix) {
			continue
		}
		rest := strings.TrimPrefix(f.path, prefix)
		first, _, _ := strings.Cut(rest, "/")
		child := k
		child.path = path.Join(k.path, first)
		seen[child] = true
	}

	out := make([]fileKey, 0, len(seen))
	for c := range seen {
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b fileKey) int { return strings.Compare(a.path, b.path) })

	return out
}

// fileEntry describes a file; with withContent, as a file's own answer
// does, it carries the content in base64 unless the file is large.
func (s *Server) fileEntry(k fileKey, content []byte, withContent bool) contentEntry {
	e := s.entry(k, "file", blobSHA(content))
	e.Size = len(content)
	download := fmt.Sprintf("%sraw/%s/%s/%s/%s", s.URL, k.owner, k.repo, k.ref, k.path)
	e.DownloadURL = &download
	if !withContent {
		return e
	}

	text := ""
	e.Encoding = "none"
	if len(content) <= LargeFile {
		text = wrappedBase64(content)
		e.Encoding = "base64"
	}
	e.Content = &text

	return e
}

// childEntry describes an item of a directory listing.
func (s *Server) childEntry(parent, child fileKey) contentEntry {
	s.mu.Lock()
	content, isFile := s.files[child]
	s.mu.Unlock()
	if isFile {
		return s.fileEntry(child, content, false)
	}
	return s.entry(child, "dir", blobSHA([]byte(child.path)))
}

// entry fills in the fields every kind of content entry has.
func (s *Server) entry(k fileKey, kind, sha string) contentEntry {
	repoURL := fmt.Sprintf("%srepos/%s/%s", s.URL, k.owner, k.repo)
	self := fmt.Sprintf("%s/contents/%s?ref=%s", repoURL, k.path, url.QueryEscape(k.ref))
	git := fmt.Sprintf("%s/git/blobs/%s", repoURL, sha)
	html := fmt.Sprintf("%s%s/%s/blob/%s/%s", s.URL, k.owner, k.repo, k.ref, k.path)

	return contentEntry{
		Type: kind, Name: path.Base(k.path), Path: k.path, SHA: sha,
		URL: self, GitURL: git, HTMLURL: html,
		Links: contentLinks{Self: self, Git: git, HTML: html},
	}
}

// wantsRaw reports whether the request asks for the raw media type.
func wantsRaw(r *http.Request) bool {
	accept := r.Header.Get("Accept")
	return strings.Contains(accept, "application/vnd.github.raw") ||
		strings.Contains(accept, "application/vnd.github.v3.raw")
}

// serveRepresentation answers with v as JSON, or 304 when the client
// already holds it.
func (s *Server) serveRepresentation(w http.ResponseWriter, r *http.Request, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		s.t.Errorf("githubtest: encode content: %v", err)
		return
	}
	etag := `W/"` + digest(body) + `"`
	if s.notModified(w, r, etag) {
		return
	}

	w.Header().Set("ETag", etag)
	s.writeJSON(w, http.StatusOK, v)
}

// serveRaw answers with a file's bytes, or 304 when the client already
// holds them.
func (s *Server) serveRaw(w http.ResponseWriter, r *http.Request, content []byte) {
	etag := `"` + blobSHA(content) + `"`
	if s.notModified(w, r, etag) {
		return
	}

	s.writeRateHeaders(w, http.StatusOK)
	w.Header().Set("ETag", etag)
	w.Header().Set("Content-Type", "application/vnd.github.raw; charset=utf-8")
	w.Header().Set("X-GitHub-Media-Type", "github.v3; param=raw")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(content)
}

// notModified answers 304 when If-None-Match names etag; weak and strong
// tags compare alike, as GitHub compares them.
func (s *Server) notModified(w http.ResponseWriter, r *http.Request, etag string) bool {
	for _, tag := range strings.Split(r.Header.Get("If-None-Match"), ",") {
		tag = strings.TrimSpace(tag)
		if tag == "*" || strings.TrimPrefix(tag, "W/") == strings.TrimPrefix(etag, "W/") {
			s.writeRateHeaders(w, http.StatusNotModified)
			w.Header().Set("ETag", etag)
			w.WriteHeader(http.StatusNotModified)
			return true
		}
	}
	return false
}

// blobSHA is the git blob id of content, the sha GitHub reports for it.
func blobSHA(content []byte) string {
	h := sha1.New()
	fmt.Fprintf(h, "blob %d\x00", len(content))
	h.Write(content)
	return hex.EncodeToString(h.Sum(nil))
}

// digest is a short hash of b for ETags.
func digest(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:20])
}

// wrappedBase64 encodes content as GitHub does in contents answers: base64
// in lines of 60 characters, each ending in a newline.
func wrappedBase64(content []byte) string {
	enc := base64.StdEncoding.EncodeToString(content)
	var b strings.Builder
	for len(enc) > 60 {
		b.WriteString(enc[:60])
		b.WriteByte('\n')
		enc = enc[60:]
	}
	b.WriteString(enc)
	b.WriteByte('\n')
	return b.String()
}
