package profdecode

import (
	"fmt"
	"sync"
)

// Budget is the memory one run may spend on parsed profiles: the inputs
// of one compare, one loaded observation, or everything an ingest
// receiver holds. Decode charges each profile's estimated cost before
// parsing it, so that many profiles parsed in parallel, or a few that
// each pass their own Limits, still cannot add up past the run's memory.
// A nil *Budget allows everything. It is safe for concurrent use.
type Budget struct {
	mu   sync.Mutex
	max  int64
	used int64
}

// NewBudget returns a budget of max bytes.
func NewBudget(max int64) *Budget { return &Budget{max: max} }

// Charge takes n bytes from the budget, or returns an error wrapping
// ErrOverBudget and takes nothing when they do not fit.
func (b *Budget) Charge(n int64) error {
	if b == nil {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.used+n > b.max {
		return fmt.Errorf("%w: parsing needs about %s more, %s of %s already in use",
			ErrOverBudget, mib(n), mib(b.used), mib(b.max))
	}
	b.used += n
	return nil
}

// Refund returns n bytes charged before.
func (b *Budget) Refund(n int64) {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.used = max(b.used-n, 0)
}

// Used is what the budget has given out.
func (b *Budget) Used() int64 {
	if b == nil {
		return 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}

// Max is the budget's size.
func (b *Budget) Max() int64 {
	if b == nil {
		return 0
	}
	return b.max
}
