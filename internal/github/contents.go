package github

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"

	gh "github.com/google/go-github/v62/github"
)

// Errors ReadFile returns, wrapped; all of them are permanent.
var (
	// ErrNotFound means the file, its repository or the ref does not
	// exist, or the credentials may not see them: GitHub answers 404 to
	// all of these alike.
	ErrNotFound = errors.New("github: not found")
	// ErrNotFile means the path names a directory, a symlink to
	// outside the repository, or a submodule.
	ErrNotFile = errors.New("github: not a regular file")
	// ErrTooLarge means the file is larger than Options.MaxFileSize.
	ErrTooLarge = errors.New("github: file too large")
)

// mediaTypeRaw asks the contents API for the file's bytes instead of JSON,
// the only way to read a file over 1 MB through it.
const mediaTypeRaw = "application/vnd.github.raw"

// ReadFile returns the content of the file at path in owner/repo at ref, a
// branch, tag or commit sha, acting for installation inst (ignored with
// token authentication). It refuses files over Options.MaxFileSize with
// ErrTooLarge and returns ErrNotFound when there is no such file.
//
// Files read before are asked for with their ETag; when GitHub answers
// 304 Not Modified, which costs nothing against the rate limit, the cached
// copy is returned.
func (c *Client) ReadFile(ctx context.Context, inst int64, owner, repo, path, ref string) ([]byte, error) {
	key := fileKey{owner: owner, repo: repo, path: strings.TrimPrefix(path, "/"), ref: ref}
	api, err := c.installation(inst)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", key, err)
	}
	if key.path == "" || slices.Contains(strings.Split(key.path, "/"), "..") {
		return nil, fmt.Errorf("read %s: %w", key,
			&permanentError{err: errors.New("path must name a file inside the repository")})
	}

	var body []byte
	err = c.call(ctx, OpGetContent, func(ctx context.Context) error {
		b, err := c.fetchFile(ctx, api, key)
		body = b
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", key, err)
	}

	return body, nil
}

// String names the file for errors and logs as owner/repo:path@ref.
func (k fileKey) String() string {
	return k.owner + "/" + k.repo + ":" + k.path + "@" + k.ref
}

// fetchFile makes one attempt at reading a file: a conditional request for
// its JSON description, then, for a file over 1 MB, one for its raw bytes.
func (c *Client) fetchFile(ctx context.Context, api *gh.Client, key fileKey) ([]byte, error) {
	req, err := api.NewRequest(http.MethodGet, contentsURL(key), nil)
	if err != nil {
		return nil, &permanentError{err: err}
	}
	cached, hit := c.cache.get(key)
	if hit {
		req.Header.Set("If-None-Match", cached.etag)
	}

	var raw json.RawMessage
	resp, err := api.Do(ctx, req, &raw)
	if hit && resp != nil && resp.StatusCode == http.StatusNotModified {
		c.log.DebugContext(ctx, "github file not modified, using cached copy",
			"file", key.String())
		return bytes.Clone(cached.body), nil
	}
	var respErr *gh.ErrorResponse
	if errors.As(err, &respErr) && respErr.Response.StatusCode == http.StatusNotFound {
		return nil, fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	if err != nil {
		return nil, err
	}

	body, err := c.decodeFile(ctx, api, key, raw)
	if err != nil {
		return nil, err
	}
	c.cache.put(key, cachedFile{etag: resp.Header.Get("ETag"), body: body})

	return bytes.Clone(body), nil
}

// decodeFile returns the bytes a contents response describes, checking it
// is a file within the size limit.
func (c *Client) decodeFile(ctx context.Context, api *gh.Client, key fileKey, raw json.RawMessage) ([]byte, error) {
	if bytes.HasPrefix(bytes.TrimSpace(raw), []byte("[")) {
		return nil, &permanentError{err: fmt.Errorf("%w: it is a directory", ErrNotFile)}
	}
	var file gh.RepositoryContent
	if err := json.Unmarshal(raw, &file); err != nil {
		return nil, &permanentError{err: fmt.Errorf("decode contents response: %w", err)}
	}
	if file.GetType() != "file" {
		return nil, &permanentError{err: fmt.Errorf("%w: it is a %s", ErrNotFile, file.GetType())}
	}
	if err := c.checkSize(int64(file.GetSize())); err != nil {
		return nil, err
	}

	var body []byte
	var err error
	switch file.GetEncoding() {
	case "base64":
		// GitHub breaks the base64 text into lines, which the decoder skips.
		var text string
		if file.Content != nil {
			text = *file.Content
		}
		body, err = base64.StdEncoding.DecodeString(text)
	case "none":
		// Files over 1 MB come without content; only the raw media type
		// returns them.
		body, err = c.fetchRaw(ctx, api, key)
	default:
		err = &permanentError{err: fmt.Errorf("unknown content encoding %q", file.GetEncoding())}
	}
	if err != nil {
		return nil, err
	}

	return body, c.checkSize(int64(len(body)))
}

// fetchRaw reads a file's bytes with the raw media type, reading no more
// than the size limit allows.
func (c *Client) fetchRaw(ctx context.Context, api *gh.Client, key fileKey) ([]byte, error) {
	req, err := api.NewRequest(http.MethodGet, contentsURL(key), nil)
	if err != nil {
		return nil, &permanentError{err: err}
	}
	req.Header.Set("Accept", mediaTypeRaw)

	resp, err := api.BareDo(ctx, req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()

	body, err := io.ReadAll(io.LimitReader(resp.Body, c.opts.MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("read raw content: %w", err)
	}

	return body, nil
}

// checkSize refuses a file larger than the configured limit.
func (c *Client) checkSize(n int64) error {
	if n > c.opts.MaxFileSize {
		return &permanentError{
			err: fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, n, c.opts.MaxFileSize),
		}
	}
	return nil
}

// contentsURL is the contents API path for key, relative to the API root.
func contentsURL(key fileKey) string {
	// url.URL escapes each path segment but keeps the slashes between them.
	p := (&url.URL{Path: key.path}).EscapedPath()
	u := fmt.Sprintf("repos/%s/%s/contents/%s", url.PathEscape(key.owner), url.PathEscape(key.repo), p)
	if key.ref != "" {
		u += "?ref=" + url.QueryEscape(key.ref)
	}
	return u
}
