package bpf

import (
	"slices"
	"testing"

	"github.com/cilium/ebpf"
)

// readAll reads a hash map in batches and gets what the iterator gets,
// entries spread over several batches included.
func TestReadAllBatches(t *testing.T) {
	requireCollectors(t, OnCPU)
	m, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Hash, KeySize: 4, ValueSize: 8, MaxEntries: 4096})
	if err != nil {
		t.Skipf("making a hash map: %v", err)
	}
	defer m.Close()
	const n = 3*batchSize + 17
	for i := range uint32(n) {
		if err := m.Put(i, uint64(i)*3); err != nil {
			t.Fatal(err)
		}
	}
	keys, values, err := readAll[uint32, uint64](m)
	if err != nil {
		t.Fatal(err)
	}
	ikeys, ivalues, err := iterateAll[uint32, uint64](m)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != n || len(ikeys) != n {
		t.Fatalf("batches read %d entries, the iterator %d, want %d", len(keys), len(ikeys), n)
	}
	for i, k := range keys {
		if values[i] != uint64(k)*3 {
			t.Fatalf("key %d: value %d", k, values[i])
		}
	}
	slices.Sort(keys)
	slices.Sort(ikeys)
	if !slices.Equal(keys, ikeys) || len(ivalues) != n {
		t.Error("the batches and the iterator read different keys")
	}
	// The system calls: one a batch, against two an entry.
	if _, err := m.BatchLookup(new(ebpf.MapBatchCursor), make([]uint32, batchSize), make([]uint64, batchSize), nil); err != nil {
		t.Errorf("this kernel has no batch lookup on hash maps (%v): the agent reads them one key at a time", err)
	}
}
