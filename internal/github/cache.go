package github

import (
	"container/list"
	"sync"
)

// fileKey names one file at one ref.
type fileKey struct {
	owner, repo, path, ref string
}

// cachedFile is a file's content with the ETag GitHub sent for it.
type cachedFile struct {
	etag string
	body []byte
}

// fileCache is a bounded least-recently-used map of files ReadFile has
// read. It lets ReadFile ask with If-None-Match, and a 304 answer does not
// count against the rate limit. A nil *fileCache caches nothing.
type fileCache struct {
	max int

	mu    sync.Mutex
	order *list.List                // guarded by mu; front is most recent
	items map[fileKey]*list.Element // guarded by mu
}

// entry is what the list elements of a fileCache hold.
type entry struct {
	key  fileKey
	file cachedFile
}

// newFileCache returns a cache of at most max files, or nil when max is
// not positive.
func newFileCache(max int) *fileCache {
	if max <= 0 {
		return nil
	}
	return &fileCache{max: max, order: list.New(), items: make(map[fileKey]*list.Element)}
}

func (c *fileCache) get(k fileKey) (cachedFile, bool) {
	if c == nil {
		return cachedFile{}, false
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[k]
	if !ok {
		return cachedFile{}, false
	}
	c.order.MoveToFront(el)

	return el.Value.(*entry).file, true
}

func (c *fileCache) put(k fileKey, f cachedFile) {
	if c == nil || f.etag == "" {
		return
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[k]; ok {
		el.Value.(*entry).file = f
		c.order.MoveToFront(el)
		return
	}
	c.items[k] = c.order.PushFront(&entry{key: k, file: f})

	if c.order.Len() > c.max {
		oldest := c.order.Back()
		c.order.Remove(oldest)
		delete(c.items, oldest.Value.(*entry).key)
	}
}
