package verdict

// Thresholds are every number the verdict is judged against, in one place.
// docs/analysis.md explains each and where its default comes from.
type Thresholds struct {
	// MinLoad is the least load (threads bound per second of wall time)
	// for a class to be the verdict: below it in every class the target
	// is not saturated by anything, and the class is none.
	MinLoad float64 `json:"min_load"`
	// SecondaryRatio: a second class whose load is at least this part of
	// the first's is reported as secondary.
	SecondaryRatio float64 `json:"secondary_ratio"`
	// MemoryShareOfCPU: when GC, allocation and page faults take at least
	// this part of the target's CPU time, memory management is the
	// bottleneck even if the CPU class carries more load.
	MemoryShareOfCPU float64 `json:"memory_share_of_cpu"`

	// USE table.
	CPUBusy        float64 `json:"cpu_busy"`          // host CPU utilization
	RunQueuePerCPU float64 `json:"run_queue_per_cpu"` // runnable tasks per CPU beyond which the CPUs are saturated
	PSISome        float64 `json:"psi_some"`          // share of time some task stalled (cpu, memory, io)
	MemoryUsed     float64 `json:"memory_used"`       // share of RAM not available
	DiskBusy       float64 `json:"disk_busy"`         // share of time a disk had a request in flight
	DiskQueue      float64 `json:"disk_queue"`        // mean requests in flight
	RetransRatio   float64 `json:"retrans_ratio"`     // TCP segments retransmitted per segment sent

	// LeakBytesPerSecond and LeakGrowth: memory (RSS or Go heap) growing
	// at least this fast and by at least this part of its starting size
	// through the window is reported as a leak finding.
	LeakBytesPerSecond float64 `json:"leak_bytes_per_second"`
	LeakGrowth         float64 `json:"leak_growth"`

	// MaxPriorities caps the ranked list.
	MaxPriorities int `json:"max_priorities"`
}

// DefaultThresholds are the documented defaults (docs/analysis.md).
func DefaultThresholds() Thresholds {
	return Thresholds{
		MinLoad:            0.2,
		SecondaryRatio:     0.5,
		MemoryShareOfCPU:   0.25,
		CPUBusy:            0.8,
		RunQueuePerCPU:     1,
		PSISome:            0.1,
		MemoryUsed:         0.9,
		DiskBusy:           0.6,
		DiskQueue:          1,
		RetransRatio:       0.01,
		LeakBytesPerSecond: 1 << 20,
		LeakGrowth:         0.1,
		MaxPriorities:      10,
	}
}
