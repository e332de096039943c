package collect

import (
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// TestProcessScan scans the real /proc around a second of a spinning
// shell: the shell shows about one core, an idle process is left out.
func TestProcessScan(t *testing.T) {
	// timeout bounds the shell even if this test dies; the process group
	// lets the cleanup kill both (killing timeout alone would orphan sh).
	spin := exec.Command("timeout", "5", "sh", "-c", "while :; do :; done")
	spin.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := spin.Start(); err != nil {
		t.Skipf("cannot start a spinning shell: %v", err)
	}
	defer func() { syscall.Kill(-spin.Process.Pid, syscall.SIGKILL); spin.Wait() }()
	idle := exec.Command("sleep", "5")
	if err := idle.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { idle.Process.Kill(); idle.Wait() }()
	time.Sleep(100 * time.Millisecond) // past exec

	scan, err := StartProcessScan(Env{})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	series, _, err := scan.Finish()
	if err != nil {
		t.Fatal(err)
	}
	// timeout runs sh as its child: the spinning process is sh.
	cpu := map[string]float64{}
	for _, s := range series {
		if s.Name == "proc.cpu" {
			cpu[s.Labels["pid"]] += s.Points[0].Value
		}
		if s.Labels["pid"] == strconv.Itoa(idle.Process.Pid) {
			t.Errorf("the sleeping process was recorded: %+v", s)
		}
	}
	var best float64
	for _, v := range cpu {
		best = max(best, v)
	}
	if best < 0.5 || best > 1.2 {
		t.Errorf("the busiest process used %.2f cores over the scan, want about 1 (the spinning shell)", best)
	}
}
