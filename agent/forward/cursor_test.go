package forward

import (
	"reflect"
	"testing"
	"time"

	"github.com/perfhound/perfhound/agent/store"
)

func TestCursorSpans(t *testing.T) {
	c := newCursor()
	c.markRange(10, 20)
	c.markRange(30, 40)
	if got, want := c.gaps(0, 50), []span{{0, 10}, {20, 30}, {40, 50}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("gaps = %v, want %v", got, want)
	}
	k := store.Key{Service: "a", Version: "1", Start: time.Unix(0, 25)}
	c.markKey(k)
	if !c.isDone(k) || c.isDone(store.Key{Service: "b", Version: "1", Start: time.Unix(0, 25)}) {
		t.Fatal("a record marked is not done, or another at its start is")
	}
	// Spans that touch merge, and forget the records inside them.
	c.markRange(20, 30)
	if got, want := c.done, []span{{10, 40}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("done = %v, want %v", got, want)
	}
	if len(c.sent) != 0 || !c.isDone(k) {
		t.Fatalf("sent %v after the span covering it closed", c.sent)
	}
	c.markRange(0, 15)
	c.markRange(45, 50)
	if got, want := c.done, []span{{0, 40}, {45, 50}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("done = %v, want %v", got, want)
	}
	if got, want := c.gaps(5, 60), []span{{40, 45}, {50, 60}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("gaps = %v, want %v", got, want)
	}
	for _, tc := range []struct {
		t    int64
		want bool
	}{{0, true}, {39, true}, {40, false}, {44, false}, {45, true}, {49, true}, {50, false}} {
		if got := c.covered(tc.t); got != tc.want {
			t.Errorf("covered(%d) = %v, want %v", tc.t, got, tc.want)
		}
	}

	// It round-trips through the store's bytes.
	k2 := store.Key{Service: "b", Version: "2", Start: time.Unix(0, 42)}
	c.markKey(k2)
	b, err := c.marshal()
	if err != nil {
		t.Fatal(err)
	}
	back, err := unmarshalCursor(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, c) {
		t.Fatalf("round trip: %+v, want %+v", back, c)
	}
	if _, err := unmarshalCursor([]byte("{")); err == nil {
		t.Error("a damaged cursor read")
	}
}
