package regress

// SCAFFOLD (helper A): the trends' calls as detector.go makes them, so
// that the package builds before helper B's trend.go lands. The lead
// deletes this file on merge.

type trends struct{}

func newTrends(TrendOptions) *trends { return &trends{} }

func (t *trends) observe(Window) []Event { return nil }

func (t *trends) forget(string) {}
