//go:build linux

package symbolize

import (
	"bufio"
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"os"
	"slices"
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
	start, limit uint64 // lowest symbol, end of the highest
}

// Symbols in kallsyms have no size. One ends where the next symbol of its
// module starts; the kernel's last text symbol ends at _etext (init text at
// _einittext). The last symbol of a module, or of [bpf], which kallsyms
// cannot end, is given at most these spans: beyond them, and in the gaps
// between modules, an address misses, so that kallsyms is read again (a
// module or BPF program loaded since).
const (
	maxLastKernelSym = 64 << 10 // the kernel proper, when no end marker follows
	maxLastModuleSym = 64 << 10
	maxLastBPFSym    = 16 << 10
)

// kernelEndMarkers end the text before them and cover nothing themselves.
var kernelEndMarkers = map[string]bool{"_etext": true, "_einittext": true}

// lookup returns the symbol covering addr and the index of its module.
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
	// The kernel formats kallsyms a read at a time: big reads mean fewer
	// trips, and lines are parsed as bytes so that the symbols skipped
	// (data, padding: most of them) cost no allocation.
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		lines++
		// "ffffffff821fb620 T schedule" or "... t name\t[module]"
		addrB, rest, _ := bytes.Cut(line, []byte{' '})
		typ, rest, _ := bytes.Cut(rest, []byte{' '})
		nameB, modB, _ := bytes.Cut(rest, []byte{'\t'})
		addr, ok := parseHex(addrB)
		if !ok || len(typ) != 1 || len(nameB) == 0 {
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
		if addr == 0 || bytes.HasPrefix(nameB, []byte("__pfx_")) {
			// __pfx_: the padding before a function
			// (CONFIG_FUNCTION_PADDING_CFI): half the text symbols of a
			// recent kernel, none ever run.
			continue
		}
		var mi uint16
		if modB = bytes.TrimSpace(modB); len(modB) > 0 {
			var ok bool
			if mi, ok = modIndex[string(modB)]; !ok {
				if len(k.mods) == 1<<16 {
					continue
				}
				mi = uint16(len(k.mods))
				mod := string(modB)
				modIndex[mod] = mi
				k.mods = append(k.mods, kmod{name: mod})
			}
		}
		raw = append(raw, rawSym{start: addr, name: string(nameB), mod: mi})
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
	raw = endKernelSyms(raw, k.mods)
	if len(raw) == 0 {
		return nil, fmt.Errorf("reading %s: no text symbols", path)
	}
	for _, s := range raw {
		m := &k.mods[s.mod]
		if m.limit == 0 || s.start < m.start {
			m.start = s.start
		}
		m.limit = max(m.limit, s.start+s.size)
	}
	k.tab, _ = newSymtab(raw)
	return k, nil
}

// endKernelSyms sorts raw by address, gives each symbol its size (see
// maxLastKernelSym) and drops the end markers.
func endKernelSyms(raw []rawSym, mods []kmod) []rawSym {
	slices.SortFunc(raw, func(a, b rawSym) int { return cmp.Compare(a.start, b.start) })
	// Walking down, per module: the start of the symbols being sized and
	// the next greater start.
	type next struct{ group, beyond uint64 }
	nexts := make([]next, len(mods))
	for i := len(raw) - 1; i >= 0; i-- {
		s := &raw[i]
		n := &nexts[s.mod]
		if n.group != s.start {
			if n.group != 0 {
				n.beyond = n.group
			}
			n.group = s.start
		}
		if n.beyond != 0 {
			s.size = n.beyond - s.start
			continue
		}
		switch {
		case s.mod == 0:
			s.size = maxLastKernelSym
		case mods[s.mod].name == "[bpf]":
			s.size = maxLastBPFSym
		default:
			s.size = maxLastModuleSym
		}
	}
	return slices.DeleteFunc(raw, func(s rawSym) bool { return s.mod == 0 && kernelEndMarkers[s.name] })
}

// parseHex parses a kallsyms address: 1 to 16 hex digits.
func parseHex(b []byte) (uint64, bool) {
	if len(b) == 0 || len(b) > 16 {
		return 0, false
	}
	var v uint64
	for _, c := range b {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		v = v<<4 | uint64(c)
	}
	return v, true
}
