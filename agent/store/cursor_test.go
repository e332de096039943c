package store

import (
	"errors"
	"slices"
	"testing"
	"time"
)

// TestKeysNewestGet: the keys of the services' records (not the host's)
// in time order across hours, the newest starts, one record by its key,
// and a cursor that survives reopening the store.
func TestKeysNewestGet(t *testing.T) {
	dir := t.TempDir()
	st, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	m := newWindowMaker(t, 2)
	base := time.Date(2026, 12, 4, 13, 59, 40, 0, time.UTC) // the windows straddle an hour
	for i := range 4 {
		start := base.Add(time.Duration(i) * 10 * time.Second)
		b := Batch{Host: &Record{Obs: at(m.host, start)}}
		for j, o := range m.procs {
			b.Records = append(b.Records, Record{Service: m.names[j], Version: "v1", Obs: at(o, start)})
		}
		if err := st.Put(b); err != nil {
			t.Fatal(err)
		}
	}
	keys, err := st.Keys(base.Add(10*time.Second), base.Add(40*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 6 || !slices.IsSortedFunc(keys, Key.Compare) || !keys[0].Start.Equal(base.Add(10*time.Second)) || !keys[5].Start.Equal(base.Add(30*time.Second)) {
		t.Fatalf("keys %v: want the 6 service records from 13:59:50 to 14:00:10, in order", keys)
	}
	newest, host, err := st.Newest()
	if err != nil || !newest.Equal(base.Add(30*time.Second)) || !host.Equal(newest) {
		t.Fatalf("Newest = %v, %v, %v; want 14:00:10 twice", newest, host, err)
	}
	rec, err := st.Get(keys[2], nil)
	if err != nil || rec.Service != keys[2].Service || !rec.Start.Equal(keys[2].Start) || len(rec.Obs.Profiles) == 0 {
		t.Fatalf("Get(%v) = %+v, %v", keys[2], rec, err)
	}
	if _, err := st.Get(Key{Service: "none", Version: "v1", Start: base}, nil); !errors.Is(err, ErrNoData) {
		t.Errorf("Get of a record not stored: %v, want ErrNoData", err)
	}

	if v, err := st.Cursor("pyro"); err != nil || v != nil {
		t.Fatalf("a cursor never set: %q, %v", v, err)
	}
	if err := st.SetCursor("pyro", []byte(`{"done":[]}`)); err != nil {
		t.Fatal(err)
	}
	st.Close()
	if st, err = Open(dir, Options{}); err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if v, err := st.Cursor("pyro"); err != nil || string(v) != `{"done":[]}` {
		t.Fatalf("the cursor after reopening: %q, %v", v, err)
	}
}
