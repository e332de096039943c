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

	"github.com/perfhound/perfhound/analyzer/observation"
)

// process.psi: pressure stall information of the target's cgroup v2, from
// cpu.pressure, memory.pressure and io.pressure in the cgroup's directory
// (kernel 4.20+). Same series as host.psi, named process.psi:
//
//	process.psi{resource="cpu"|"memory"|"io", kind="some"|"full"}   "seconds/s"
//	process.psi.avg10{resource, kind}                               "percent"
//
// The numbers are those of every task in the cgroup, not of the process
// alone; for a process in the root cgroup they are the host's. The cgroup
// is the "0::/path" line of /proc/PID/cgroup, read again each sample as a
// process can be moved; the cgroup v2 mount is Env.CgroupFS, else the
// cgroup2 entry of ProcFS/self/mountinfo (on hybrid systems often
// /sys/fs/cgroup/unified), else SysFS/fs/cgroup. Mount points and cgroup
// paths are those seen from the agent's mount and cgroup namespaces.
//
// gopsutil has no cgroup or PSI reader. The sampler does not run, and says
// why, when the process is in no cgroup v2 hierarchy or the cgroup has no
// pressure files (PSI off, or disabled for it with cgroup.pressure).

func init() { Register(observation.SignalProcessPSI, processFactory(newProcessPSI)) }

type processPSI struct {
	w    *procWatch
	root string
}

func newProcessPSI(w *procWatch) (Sampler, error) {
	root, err := cgroup2Root(w.env)
	if err != nil {
		return nil, err
	}
	s := &processPSI{w: w, root: root}
	dir, err := s.dir()
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(dir, "cpu.pressure")); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("no cpu.pressure in %s: no PSI for this cgroup (kernel without PSI, psi=0, or cgroup.pressure set to 0)", dir)
		}
		return nil, err
	}
	return s, nil
}

func (*processPSI) Name() observation.Signal { return observation.SignalProcessPSI }

// dir returns the directory of the process's cgroup v2.
func (s *processPSI) dir() (string, error) {
	path := s.w.path("cgroup")
	b, err := readFile(path)
	if err != nil {
		return "", s.w.failed(err)
	}
	cg, err := parseCgroupV2Path(path, b)
	if err != nil {
		return "", err
	}
	return filepath.Join(s.root, filepath.FromSlash(cg)), nil
}

func (s *processPSI) Sample(_ context.Context, rec *Recorder) error {
	if st, ok, err := s.w.read(); !ok || st.state == 'Z' {
		return err // a zombie may have left its cgroup
	}
	dir, err := s.dir()
	if err != nil {
		return err
	}
	for _, res := range psiResources {
		if err := samplePSI(rec, observation.ProcessPSI, observation.ProcessPSIAvg10, res, filepath.Join(dir, res+".pressure")); err != nil {
			return err
		}
	}
	return nil
}

// cgroup2Root finds the cgroup v2 mount: Env.CgroupFS, else the cgroup2
// line of ProcFS/self/mountinfo, else SysFS/fs/cgroup if it is a cgroup v2
// root (it has cgroup.controllers).
func cgroup2Root(env Env) (string, error) {
	if env.CgroupFS != "" {
		return env.CgroupFS, nil
	}
	path := env.proc("self", "mountinfo")
	b, err := readFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	if err == nil {
		mnt, ok, err := parseMountinfoCgroup2(path, b)
		if err != nil {
			return "", err
		}
		if ok {
			return mnt, nil
		}
	}
	def := env.sys("fs", "cgroup")
	if _, err := os.Stat(filepath.Join(def, "cgroup.controllers")); err != nil {
		return "", fmt.Errorf("no cgroup v2 hierarchy: none in %s and %s is not one", path, def)
	}
	return def, nil
}

// parseMountinfoCgroup2 returns the mount point of the first cgroup2
// filesystem in a mountinfo file (proc(5)): the mount point is field 5,
// the filesystem type the first field after the " - " separator.
func parseMountinfoCgroup2(path string, b []byte) (string, bool, error) {
	var mnt string
	err := lines(b, func(n int, line string) error {
		if mnt != "" || strings.TrimSpace(line) == "" {
			return nil
		}
		left, right, ok := strings.Cut(line, " - ")
		lf, rf := strings.Fields(left), strings.Fields(right)
		if !ok || len(lf) < 5 || len(rf) < 1 {
			return lineError(path, n, "not a mountinfo line: %q", line)
		}
		if rf[0] == "cgroup2" {
			mnt = unescapeMountinfo(lf[4])
		}
		return nil
	})
	return mnt, mnt != "", err
}

// unescapeMountinfo undoes the octal escapes (\040 for a space) the kernel
// writes in mountinfo paths.
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// parseCgroupV2Path returns the cgroup v2 path of /proc/PID/cgroup: the
// line "0::/path" (hierarchy 0, no controllers).
func parseCgroupV2Path(path string, b []byte) (string, error) {
	var cg string
	err := lines(b, func(n int, line string) error {
		f := strings.SplitN(line, ":", 3)
		if len(f) != 3 {
			if strings.TrimSpace(line) == "" {
				return nil
			}
			return lineError(path, n, "want \"id:controllers:path\", got %q", line)
		}
		if f[0] == "0" && f[1] == "" && cg == "" {
			cg = f[2]
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	if !strings.HasPrefix(cg, "/") {
		return "", fmt.Errorf("%s: no cgroup v2 line \"0::/path\": the process is in cgroup v1 hierarchies only", path)
	}
	// A cgroup removed while the process is still in it (possible for a
	// zombie) reads "/path (deleted)".
	return strings.TrimSuffix(cg, " (deleted)"), nil
}
