package regress

// TrendOptions configure drift, class and leak detection within a
// version. SCAFFOLD: fields are the implementer's (helper B).
type TrendOptions struct{}

// DefaultTrendOptions are the agent's.
func DefaultTrendOptions() TrendOptions { return TrendOptions{} }
