package ehframe

import "path/filepath"

// existing is the paths that are on this machine, each file once.
func existing(_ any, paths []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, p := range paths {
		real, err := filepath.EvalSymlinks(p)
		if err != nil || seen[real] {
			continue
		}
		seen[real] = true
		out = append(out, real)
	}
	return out
}
