package github

import "time"

// SetClock makes c measure clone tokens' remaining life by now, so tests
// can see tokens age without waiting.
func SetClock(c *Client, now func() time.Time) { c.now = now }

// CachedCloneTokens returns how many repositories' clone tokens c keeps.
func CachedCloneTokens(c *Client) int {
	c.clones.mu.Lock()
	defer c.clones.mu.Unlock()
	return len(c.clones.entries)
}
