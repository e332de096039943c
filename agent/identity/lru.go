package identity

import "container/list"

// lru is a map bounded to max entries that drops the least recently used
// one to make room. Not safe for concurrent use (the Resolver locks).
type lru[K comparable, V any] struct {
	max   int
	order *list.List // front: most recently used; values are *lruItem
	items map[K]*list.Element
}

type lruItem[K comparable, V any] struct {
	key K
	val V
}

func newLRU[K comparable, V any](max int) *lru[K, V] {
	return &lru[K, V]{max: max, order: list.New(), items: map[K]*list.Element{}}
}

func (c *lru[K, V]) get(k K) (V, bool) {
	e, ok := c.items[k]
	if !ok {
		var zero V
		return zero, false
	}
	c.order.MoveToFront(e)
	return e.Value.(*lruItem[K, V]).val, true
}

// put adds or replaces k's value and reports how many entries it evicted.
func (c *lru[K, V]) put(k K, v V) (evicted int) {
	if e, ok := c.items[k]; ok {
		e.Value.(*lruItem[K, V]).val = v
		c.order.MoveToFront(e)
		return 0
	}
	for c.order.Len() >= c.max {
		old := c.order.Back()
		delete(c.items, old.Value.(*lruItem[K, V]).key)
		c.order.Remove(old)
		evicted++
	}
	c.items[k] = c.order.PushFront(&lruItem[K, V]{key: k, val: v})
	return evicted
}

// removeIf drops every entry whose key drop returns true for, and says
// how many.
func (c *lru[K, V]) removeIf(drop func(K) bool) (n int) {
	for e := c.order.Front(); e != nil; {
		next := e.Next()
		if k := e.Value.(*lruItem[K, V]).key; drop(k) {
			delete(c.items, k)
			c.order.Remove(e)
			n++
		}
		e = next
	}
	return n
}

func (c *lru[K, V]) len() int { return c.order.Len() }

func (c *lru[K, V]) clear() {
	c.order.Init()
	clear(c.items)
}
