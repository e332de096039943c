package collect

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// TestReadThreads reads a process's threads' schedstat files from a
// fixture tree: a thread whose file is gone (it exited after the
// listing) is left out, a file that does not parse is an error naming
// it, and a process with no thread left is fs.ErrNotExist. The process
// scan sums what the samplers read the same way.
func TestReadThreads(t *testing.T) {
	proc := t.TempDir()
	write := func(rel, content string) {
		p := filepath.Join(proc, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("7/task/7/schedstat", "100 20 3\n")
	write("7/task/8/schedstat", "200 30 4\n")
	if err := os.MkdirAll(filepath.Join(proc, "7/task/9"), 0o755); err != nil { // exited: no files
		t.Fatal(err)
	}
	write("7/task/stray/schedstat", "1 1 1\n") // not a thread ID
	env := Env{ProcFS: proc}
	parse := func(path string, b []byte) ([]uint64, error) {
		v, err := parseSchedstat(path, b)
		return v[:], err
	}
	cur, err := readThreads(env, "7", "schedstat", parse)
	if err != nil {
		t.Fatal(err)
	}
	if len(cur) != 2 || cur["7"][1] != 20 || cur["8"][0] != 200 {
		t.Errorf("threads %v, want 7 and 8", cur)
	}
	if d := threadsRunDelay(env, 7, 3, nil); d != 50 {
		t.Errorf("run delay of the threads %d, want 20+30", d)
	}

	write("7/task/8/schedstat", "200 x 4\n")
	if _, err := readThreads(env, "7", "schedstat", parse); err == nil {
		t.Error("a schedstat that does not parse: no error")
	}
	if _, err := readThreads(env, "7", "status", parse); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("no thread's status: %v, want fs.ErrNotExist", err)
	}
	if _, err := readThreads(env, "8", "schedstat", parse); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("no such process: %v, want fs.ErrNotExist", err)
	}
}
