package resiliency

import "container/list"

// lru is a small least-recently-used map; not safe for concurrent use.
type lru[K comparable, V any] struct {
	max   int
	order *list.List // of *lruEntry[K, V], most recent first
	items map[K]*list.Element
}

type lruEntry[K comparable, V any] struct {
	key K
	val V
}

func newLRU[K comparable, V any](max int) *lru[K, V] {
	return &lru[K, V]{max: max, order: list.New(), items: map[K]*list.Element{}}
}

func (l *lru[K, V]) get(key K) (V, bool) {
	if e, ok := l.items[key]; ok {
		l.order.MoveToFront(e)
		return e.Value.(*lruEntry[K, V]).val, true
	}
	var zero V
	return zero, false
}

func (l *lru[K, V]) add(key K, v V) {
	if e, ok := l.items[key]; ok {
		e.Value.(*lruEntry[K, V]).val = v
		l.order.MoveToFront(e)
		return
	}
	l.items[key] = l.order.PushFront(&lruEntry[K, V]{key, v})
	for l.order.Len() > l.max {
		last := l.order.Back()
		l.order.Remove(last)
		delete(l.items, last.Value.(*lruEntry[K, V]).key)
	}
}

// each calls f for every entry, most recent first.
func (l *lru[K, V]) each(f func(key K, v V)) {
	for e := l.order.Front(); e != nil; e = e.Next() {
		en := e.Value.(*lruEntry[K, V])
		f(en.key, en.val)
	}
}
