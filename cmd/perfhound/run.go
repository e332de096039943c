package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"

	"github.com/spf13/cobra"
	"golang.org/x/term"
)

// Exit codes shared by every command.
const (
	exitOK       = 0
	exitFindings = 1 // the command worked and found what the policy fails on
	exitBadInput = 2 // usage errors and unusable input
	exitNotSaved = 3 // the results were made but not all written where asked (errNotSaved)
)

// errFindings ends a command that ran well but must exit 1.
var errFindings = errors.New("findings")

// usageError marks errors that exit 2 after printing the usage hint.
type usageError struct{ error }

// run is the whole program, minus os.Exit, so tests can call it.
func run(args []string, stdout, stderr io.Writer) int {
	root := newRoot(stdout, stderr)
	root.SetArgs(args)
	err := root.Execute()
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, errFindings):
		return exitFindings
	}
	printErrors(stderr, err)
	var ue usageError
	if errors.As(err, &ue) {
		fmt.Fprintln(stderr, "Run 'perfhound --help' for usage.")
	}
	if isNotSaved(err) {
		return exitNotSaved
	}
	return exitBadInput
}

func newRoot(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "perfhound",
		Short: "Find what a program is bound by and catch performance regressions",
		Long: `perfhound finds what a host, a process or a Go service is bound by, and
catches performance regressions in CI by comparing benchmark results and
profiles of a base and a head.`,
		Example: `  perfhound compare base/ head/                 # benchmarks and profiles of two versions
  perfhound compare -f markdown old.txt new.txt  # benchstat-style, as a PR comment
  perfhound version`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(newDiagnose(), newAnalyze(), newCompare(), newServe(), newAgent(), newVersion())
	return root
}

// version is set with -ldflags "-X main.version=..." by release builds;
// otherwise the module version or VCS revision from the build info is used.
var version = ""

func versionString() string {
	if version != "" {
		return version
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	v := bi.Main.Version
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			v += " (" + s.Value[:12] + ")"
		}
	}
	return v
}

func newVersion() *cobra.Command {
	return &cobra.Command{
		Use:     "version",
		Short:   "Print perfhound's version",
		Example: "  perfhound version\n  perfhound version | cut -d' ' -f2",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			bi, _ := debug.ReadBuildInfo()
			goVersion := "unknown"
			if bi != nil {
				goVersion = bi.GoVersion
			}
			fmt.Fprintf(cmd.OutOrStdout(), "perfhound %s %s\n", versionString(), goVersion)
			return nil
		},
	}
}

// isTerminal reports whether w is a terminal (not merely a character
// device such as /dev/null) and the user has not asked for no colour
// (https://no-color.org, TERM=dumb): where colours and a progress line
// may be drawn.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok || os.Getenv("NO_COLOR") != "" || os.Getenv("TERM") == "dumb" {
		return false
	}
	return term.IsTerminal(int(f.Fd()))
}
