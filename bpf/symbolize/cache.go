//go:build linux

package symbolize

import "container/list"

// objCache is the LRU of parsed objects, keyed by build ID ("b:" + ID) or,
// without one, by file identity ("f:" + dev, inode, size, mtime). aliases
// map file identities to keys so that a file already seen is recognised
// from a stat, without reading its notes again. Not safe for concurrent use:
// the Symbolizer's lock guards it.
type objCache struct {
	max      int
	maxBytes int64
	ll       *list.List // of *object, most recently used first
	byKey    map[string]*list.Element
	aliases  map[string]string
	bytes    int64

	hits, misses, evictions uint64
}

func newObjCache(max int, maxBytes int64) *objCache {
	return &objCache{max: max, maxBytes: maxBytes, ll: list.New(), byKey: map[string]*list.Element{}, aliases: map[string]string{}}
}

// get returns the object cached under key, or nil, and marks it used.
func (c *objCache) get(key string) *object {
	e := c.byKey[key]
	if e == nil {
		return nil
	}
	c.ll.MoveToFront(e)
	return e.Value.(*object)
}

// getAlias returns the object a file identity names, or nil.
func (c *objCache) getAlias(id string) *object {
	key, ok := c.aliases[id]
	if !ok {
		return nil
	}
	return c.get(key)
}

// addAlias records that file identity id holds the object o.
func (c *objCache) addAlias(o *object, id string) {
	if id == "" || c.aliases[id] == o.key {
		return
	}
	if old, ok := c.aliases[id]; ok {
		if e := c.byKey[old]; e != nil {
			prev := e.Value.(*object)
			prev.aliases = deleteString(prev.aliases, id)
		}
	}
	if len(o.aliases) >= maxAliases {
		// Container churn: the same binary seen through ever new
		// overlay inodes. The oldest identity goes.
		if c.aliases[o.aliases[0]] == o.key {
			delete(c.aliases, o.aliases[0])
		}
		o.aliases = append(o.aliases[:0], o.aliases[1:]...)
	}
	c.aliases[id] = o.key
	o.aliases = append(o.aliases, id)
}

// maxAliases bounds the file identities kept for one object; a file seen
// under a dropped one has its notes read again to find the object.
const maxAliases = 16

// add inserts o and evicts the least recently used objects beyond the caps,
// never o itself.
// If an object with the same key is there already (parsed concurrently), it
// is kept and returned, and the caller releases o.
func (c *objCache) add(o *object, id string) *object {
	if e := c.byKey[o.key]; e != nil {
		c.ll.MoveToFront(e)
		prev := e.Value.(*object)
		c.addAlias(prev, id)
		return prev
	}
	c.byKey[o.key] = c.ll.PushFront(o)
	c.bytes += o.bytes()
	c.addAlias(o, id)
	for c.ll.Len() > 1 && (c.ll.Len() > c.max || c.bytes > c.maxBytes) {
		c.evict(c.ll.Back())
	}
	return o
}

func (c *objCache) evict(e *list.Element) {
	o := c.ll.Remove(e).(*object)
	delete(c.byKey, o.key)
	for _, id := range o.aliases {
		if c.aliases[id] == o.key {
			delete(c.aliases, id)
		}
	}
	c.bytes -= o.bytes()
	c.evictions++
	o.release()
}

// clear releases every object; it does not count as evictions.
func (c *objCache) clear() {
	n := c.evictions
	for c.ll.Len() > 0 {
		c.evict(c.ll.Back())
	}
	c.evictions = n
}

func deleteString(s []string, v string) []string {
	for i, x := range s {
		if x == v {
			return append(s[:i], s[i+1:]...)
		}
	}
	return s
}
