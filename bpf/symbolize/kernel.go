//go:build linux

package symbolize

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// ErrKallsymsHidden is returned (wrapped, naming the file) when every
// address in kallsyms reads 0: kernel.kptr_restrict hides them from this
// process, or it lacks CAP_SYSLOG. Kernel frames then stay unsymbolized.
var ErrKallsymsHidden = errors.New("all kallsyms addresses read 0 (kernel.kptr_restrict is set or CAP_SYSLOG is missing): kernel frames cannot be symbolized")

// KernelMapping is the pprof mapping file name of the kernel proper;
// modules get "[name]" as in kallsyms, BPF programs "[bpf]".
const KernelMapping = "[kernel.kallsyms]"

// kernelAddrMin is where the kernel half of the x86-64 address space
// begins; instruction addresses at or above it are kernel text.
const kernelAddrMin = 0xffff800000000000

// kernelSyms is the kernel's text symbols from kallsyms, in a symtab whose
// mod column says which of mods each symbol belongs to.
type kernelSyms struct {
	tab  *symtab
	mods []kmod // mods[0] is the kernel proper
}

type kmod struct {
	name         string // pprof mapping file: "[kernel.kallsyms]", "[nf_tables]"
	start, limit uint64 // lowest symbol, highest symbol + 1
}

// lookup returns the symbol covering addr and the index of its module.
// Symbols in kallsyms have no size: one runs to the next.
func (k *kernelSyms) lookup(addr uint64) (name string, mod int, ok bool) {
	i := k.tab.lookup(addr)
	if i < 0 {
		return "", -1, false
	}
	return k.tab.symName(i), k.tab.modOf(i), true
}

// loadKallsyms reads the text symbols (t, T, w, W) of a kallsyms file.
func loadKallsyms(path string) (*kernelSyms, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	k := &kernelSyms{mods: []kmod{{name: KernelMapping}}}
	modIndex := map[string]uint16{}
	var raw []rawSym
	lines, nonzero := 0, false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		lines++
		// "ffffffff821fb620 T schedule" or "... t name\t[module]"
		addrS, rest, _ := strings.Cut(line, " ")
		typ, rest, _ := strings.Cut(rest, " ")
		name, mod, _ := strings.Cut(rest, "\t")
		addr, err := strconv.ParseUint(addrS, 16, 64)
		if err != nil || len(typ) != 1 || name == "" {
			return nil, fmt.Errorf("%s:%d: malformed line %q", path, lines, line)
		}
		if addr != 0 {
			nonzero = true
		}
		switch typ[0] {
		case 't', 'T', 'w', 'W':
		default:
			continue
		}
		if addr == 0 {
			continue
		}
		var mi uint16
		if mod = strings.TrimSpace(mod); mod != "" {
			var ok bool
			if mi, ok = modIndex[mod]; !ok {
				if len(k.mods) == 1<<16 {
					continue
				}
				mi = uint16(len(k.mods))
				modIndex[mod] = mi
				k.mods = append(k.mods, kmod{name: mod})
			}
		}
		raw = append(raw, rawSym{start: addr, name: strings.Clone(name), mod: mi})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	if lines > 0 && !nonzero {
		return nil, fmt.Errorf("reading %s: %w", path, ErrKallsymsHidden)
	}
	if len(raw) == 0 {
		return nil, fmt.Errorf("reading %s: no text symbols", path)
	}
	for _, s := range raw {
		m := &k.mods[s.mod]
		if m.limit == 0 || s.start < m.start {
			m.start = s.start
		}
		m.limit = max(m.limit, s.start+1)
	}
	k.tab, _ = newSymtab(raw)
	return k, nil
}
