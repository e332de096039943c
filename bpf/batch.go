package bpf

import (
	"errors"

	"github.com/cilium/ebpf"
)

// batchSize is how many entries one batch lookup asks the kernel for.
const batchSize = 1024

// readAll returns every key and value of a hash map. It reads in batches
// (BPF_MAP_LOOKUP_BATCH, one system call per batchSize entries), where a
// MapIterator takes two a key: on a host with thousands of sleeping
// threads the off-CPU maps hold thousands of entries, and reading them
// one by one was a fifth of the agent's CPU time (agentprof, 216
// services). A kernel or map without batch operations, or a batch that
// fails midway (a hash bucket larger than the batch: ENOSPC), is read
// again with the iterator.
func readAll[K, V any](m *ebpf.Map) ([]K, []V, error) {
	var (
		keys   []K
		values []V
		cursor ebpf.MapBatchCursor
		kbuf   = make([]K, batchSize)
		vbuf   = make([]V, batchSize)
	)
	for {
		n, err := m.BatchLookup(&cursor, kbuf, vbuf, nil)
		keys = append(keys, kbuf[:n]...)
		values = append(values, vbuf[:n]...)
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			return keys, values, nil
		}
		if err != nil {
			return iterateAll[K, V](m)
		}
	}
}

// iterateAll is readAll one key at a time.
func iterateAll[K, V any](m *ebpf.Map) ([]K, []V, error) {
	var (
		keys   []K
		values []V
		k      K
		v      V
	)
	it := m.Iterate()
	for it.Next(&k, &v) {
		keys = append(keys, k)
		values = append(values, v)
	}
	return keys, values, it.Err()
}
