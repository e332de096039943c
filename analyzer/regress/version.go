package regress

// VersionOptions configure the comparison of a version with its
// predecessor. SCAFFOLD: fields are the implementer's (helper A).
type VersionOptions struct{}

// DefaultVersionOptions are the agent's.
func DefaultVersionOptions() VersionOptions { return VersionOptions{} }
