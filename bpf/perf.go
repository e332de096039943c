//go:build linux && amd64

package bpf

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// openCPUClock opens a software cpu-clock event on one CPU, for every task,
// sampling freq times a second. cpu-clock needs no hardware PMU, so it
// works in VMs, where cycles is often missing.
func openCPUClock(cpu, freq int) (int, error) {
	attr := unix.PerfEventAttr{
		Type:   unix.PERF_TYPE_SOFTWARE,
		Config: unix.PERF_COUNT_SW_CPU_CLOCK,
		Size:   uint32(unsafe.Sizeof(unix.PerfEventAttr{})),
		Sample: uint64(freq),
		Bits:   unix.PerfBitFreq,
	}
	fd, err := unix.PerfEventOpen(&attr, -1, cpu, -1, unix.PERF_FLAG_FD_CLOEXEC)
	if err != nil {
		return -1, fmt.Errorf("perf_event_open cpu-clock on CPU %d: %w", cpu, err)
	}
	return fd, nil
}

// perfSampler is the on-CPU program attached to one cpu-clock event per
// online CPU.
type perfSampler struct {
	fds   []int
	links []link.Link
}

func attachPerfSampler(prog *ebpf.Program, freq int) (*perfSampler, error) {
	cpus, err := onlineCPUs()
	if err != nil {
		return nil, err
	}
	p := &perfSampler{}
	for _, cpu := range cpus {
		fd, err := openCPUClock(cpu, freq)
		if err != nil {
			p.Close()
			return nil, err
		}
		p.fds = append(p.fds, fd)
		l, err := link.AttachRawLink(link.RawLinkOptions{Target: fd, Program: prog, Attach: ebpf.AttachPerfEvent})
		if err != nil {
			p.Close()
			return nil, fmt.Errorf("attaching on-CPU sampler to CPU %d: %w", cpu, err)
		}
		p.links = append(p.links, l)
	}
	return p, nil
}

func (p *perfSampler) Close() error {
	for _, l := range p.links {
		l.Close()
	}
	for _, fd := range p.fds {
		unix.Close(fd)
	}
	p.links, p.fds = nil, nil
	return nil
}

// onlineCPUs parses /sys/devices/system/cpu/online ("0-3,5").
func onlineCPUs() ([]int, error) {
	b, err := os.ReadFile("/sys/devices/system/cpu/online")
	if err != nil {
		return nil, fmt.Errorf("listing CPUs: %w", err)
	}
	return parseCPUList(strings.TrimSpace(string(b)))
}

func parseCPUList(s string) ([]int, error) {
	var cpus []int
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil {
			return nil, fmt.Errorf("cpu list %q: %w", s, err)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil || b < a {
				return nil, fmt.Errorf("cpu list %q: bad range %q", s, part)
			}
		}
		for c := a; c <= b; c++ {
			cpus = append(cpus, c)
		}
	}
	return cpus, nil
}
