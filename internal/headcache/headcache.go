// Package headcache remembers what a store's own appends left at the end of
// recently appended streams, so that an append expecting exactly that can
// skip reading the stream's head. The store's conditional write checks the
// expectation anyway: a stale entry costs one retry, never a wrong result.
package headcache

import "sync"

// Size is how many streams a Cache remembers; past it, an arbitrary entry
// makes room.
const Size = 4096

// Cache maps stream IDs to heads of type V. It is safe for concurrent use.
type Cache[V any] struct {
	mu    sync.Mutex
	m     map[string]V
	newer func(a, b V) bool
}

// New returns an empty cache; newer reports whether head a is later than b,
// so that a slow append cannot put back a head older than a faster one's.
func New[V any](newer func(a, b V) bool) *Cache[V] {
	return &Cache[V]{m: map[string]V{}, newer: newer}
}

// Get returns the remembered head of stream id.
func (c *Cache[V]) Get(id string) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.m[id]
	return v, ok
}

// Put remembers v as the head of stream id, unless a later one is known.
func (c *Cache[V]) Put(id string, v V) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.m[id]; ok && c.newer(old, v) {
		return
	}
	if len(c.m) >= Size {
		for k := range c.m {
			delete(c.m, k)
			break
		}
	}
	c.m[id] = v
}

// Drop forgets stream id's head.
func (c *Cache[V]) Drop(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, id)
}
