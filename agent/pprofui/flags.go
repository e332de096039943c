package pprofui

import (
	"flag"
	"io"
	"strings"
)

// flags is the driver.FlagSet pprof's driver reads its command line from:
// a fixed argument list instead of os.Args, parsed by a private
// flag.FlagSet so that pprof's flags never reach the process's own.
type flags struct {
	fs    *flag.FlagSet
	args  []string
	usage []string
}

func newFlags(args ...string) *flags {
	fs := flag.NewFlagSet("pprof", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return &flags{fs: fs, args: args}
}

func (f *flags) Bool(name string, def bool, usage string) *bool { return f.fs.Bool(name, def, usage) }
func (f *flags) Int(name string, def int, usage string) *int    { return f.fs.Int(name, def, usage) }
func (f *flags) Float64(name string, def float64, usage string) *float64 {
	return f.fs.Float64(name, def, usage)
}
func (f *flags) String(name, def, usage string) *string { return f.fs.String(name, def, usage) }

// StringList takes the flag once, as pprof's own GoFlags does.
func (f *flags) StringList(name, def, usage string) *[]*string {
	return &[]*string{f.fs.String(name, def, usage)}
}

func (f *flags) ExtraUsage() string      { return strings.Join(f.usage, "\n") }
func (f *flags) AddExtraUsage(eu string) { f.usage = append(f.usage, eu) }

// Parse follows the driver.FlagSet contract: on a bad flag or no
// arguments it calls usage and returns nil.
func (f *flags) Parse(usage func()) []string {
	if err := f.fs.Parse(f.args); err != nil || f.fs.NArg() == 0 {
		usage()
		return nil
	}
	return f.fs.Args()
}
