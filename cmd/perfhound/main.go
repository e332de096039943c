// Command perfhound diagnoses what a host or program is bound by, compares
// benchmark results and profiles in CI, and watches hosts continuously.
package main

import "os"

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }
