package collect

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/perfhound/perfhound/analyzer/observation"
)

// host.psi: pressure stall information from /proc/pressure/{cpu,memory,io}
// (kernel 4.20+, CONFIG_PSI, not booted with psi=0).
//
//	host.psi{resource="cpu"|"memory"|"io", kind="some"|"full"}         "seconds/s"
//	host.psi.avg10{resource, kind}                                     "percent"
//
// The first is the rate of the kernel's "total" stall counter
// (microseconds): the share of wall time in which some (at least one) or
// all non-idle tasks were stalled on the resource, over exactly the
// sampling interval. avg10 is the kernel's own 10 s running average, in
// percent, kept for comparison with other tools. System-wide CPU "full" is
// reported as zero by the kernel (it is only defined per cgroup).
//
// gopsutil has no PSI reader. Without /proc/pressure the sampler does not
// run and says why; a resource file that disappears or refuses to be read
// (EOPNOTSUPP) is recorded as missing, not as an error each sample.

func init() { Register(observation.SignalHostPSI, newHostPSI) }

var psiResources = []string{"cpu", "memory", "io"}

type hostPSI struct{ dir string }

func newHostPSI(env Env, _ Target) (Sampler, error) {
	env = env.withDefaults()
	dir := env.proc("pressure")
	if _, err := os.Stat(dir); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("no %s: kernel without PSI (CONFIG_PSI off, before 4.20, or booted with psi=0)", dir)
		}
		return nil, err
	}
	return &hostPSI{dir: dir}, nil
}

func (*hostPSI) Name() observation.Signal { return observation.SignalHostPSI }

func (s *hostPSI) Sample(_ context.Context, rec *Recorder) error {
	for _, res := range psiResources {
		if err := samplePSI(rec, observation.HostPSI, observation.HostPSIAvg10, res, filepath.Join(s.dir, res)); err != nil {
			return err
		}
	}
	return nil
}

// samplePSI records one pressure file as series name{resource=res} and
// its 10 s average as avg10{resource=res}. A file
// that is absent or not supported is recorded as missing.
func samplePSI(rec *Recorder, name, avg10 observation.SeriesName, res, path string) error {
	b, err := readFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.EOPNOTSUPP) {
			rec.Missing(observation.Signal(name).Sub(res), fmt.Sprintf("%s: %v: no pressure information for %s", path, unwrapAll(err), res))
			return nil
		}
		return err
	}
	stalls, err := parsePSI(path, b)
	if err != nil {
		return err
	}
	for _, st := range stalls {
		labels := func() map[string]string { return map[string]string{"resource": res, "kind": st.kind} }
		rec.Counter(name, labels(), float64(st.totalMicros)/1e6)
		rec.Gauge(avg10, labels(), st.avg10)
	}
	return nil
}

func unwrapAll(err error) error {
	for {
		u := errors.Unwrap(err)
		if u == nil {
			return err
		}
		err = u
	}
}

// psiStall is one line of a pressure file.
type psiStall struct {
	kind                 string // "some" or "full"
	avg10, avg60, avg300 float64
	totalMicros          uint64
}

// parsePSI reads "some avg10=0.12 avg60=0.05 avg300=0.01 total=123456"
// lines; avg10 and total are required, "some" must be there.
func parsePSI(path string, b []byte) ([]psiStall, error) {
	var out []psiStall
	err := lines(b, func(n int, line string) error {
		f := strings.Fields(line)
		if len(f) == 0 {
			return nil
		}
		if f[0] != "some" && f[0] != "full" {
			return lineError(path, n, "want \"some\" or \"full\", got %q", f[0])
		}
		st := psiStall{kind: f[0]}
		var haveAvg, haveTotal bool
		for _, kv := range f[1:] {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				return lineError(path, n, "want key=value, got %q", kv)
			}
			var err error
			switch k {
			case "avg10":
				st.avg10, err = strconv.ParseFloat(v, 64)
				haveAvg = true
			case "avg60":
				st.avg60, err = strconv.ParseFloat(v, 64)
			case "avg300":
				st.avg300, err = strconv.ParseFloat(v, 64)
			case "total":
				st.totalMicros, err = strconv.ParseUint(v, 10, 64)
				haveTotal = true
			}
			if err != nil {
				return lineError(path, n, "%s: %v", k, err)
			}
			if !finiteNonNeg(st.avg10) || !finiteNonNeg(st.avg60) || !finiteNonNeg(st.avg300) {
				return lineError(path, n, "%s: bad value %q", k, v)
			}
		}
		if !haveAvg || !haveTotal {
			return lineError(path, n, "no avg10 or total in %q", line)
		}
		out = append(out, st)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(out) == 0 || out[0].kind != "some" {
		return nil, fmt.Errorf("%s: no \"some\" line", path)
	}
	return out, nil
}
