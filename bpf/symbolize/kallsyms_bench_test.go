package symbolize

import "testing"

// BenchmarkLoadKallsyms reads this machine's /proc/kallsyms: the kernel
// half of a session's start-up cost.
func BenchmarkLoadKallsyms(b *testing.B) {
	if _, err := loadKallsyms("/proc/kallsyms"); err != nil {
		b.Skipf("no readable /proc/kallsyms: %v", err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := loadKallsyms("/proc/kallsyms"); err != nil {
			b.Fatal(err)
		}
	}
}
