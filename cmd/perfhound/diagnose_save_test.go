package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// watchShort is a diagnose of a short command without eBPF: the cheapest
// window that still runs every step from the checks to the report. The
// command touches marker as the window starts, so a test can tell that
// a refusal came before the window was spent.
func watchShort(marker string, extra ...string) []string {
	args := append([]string{"diagnose", "--no-ebpf", "-d", "1s", "-f", "json"}, extra...)
	return append(args, "--", "sh", "-c", `touch "$0"; sleep 0.8`, marker)
}

// TestDiagnoseSaveKeepsUsersFiles saves over a directory that holds an
// observation and a user's own files: nothing of theirs may go, and an
// observation is replaced only when asked to.
func TestDiagnoseSaveKeepsUsersFiles(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "obs")
	marker := filepath.Join(root, "ran")
	if code, _, errb := runCLI(t, watchShort(marker, "--save", dir)...); code != 0 {
		t.Fatalf("first save: exit %d: %s", code, errb)
	}
	index := filepath.Join(dir, "observation.json")
	first, err := os.ReadFile(index)
	if err != nil {
		t.Fatal(err)
	}
	notes := writeFile(t, filepath.Join(dir, "notes.txt"), []byte("what I changed before this run"))
	mine := writeFile(t, filepath.Join(dir, "mine", "data.csv"), []byte("1,2,3"))
	kept := func(t *testing.T) {
		t.Helper()
		for _, f := range []string{notes, mine} {
			if _, err := os.Stat(f); err != nil {
				t.Fatalf("the user's %s is gone: %v", f, err)
			}
		}
		if b, err := os.ReadFile(index); err != nil || !bytes.Equal(b, first) {
			t.Fatalf("the saved observation changed (%v)", err)
		}
	}
	refused := func(t *testing.T, want string, args ...string) {
		t.Helper()
		os.Remove(marker)
		code, out, errb := runCLI(t, watchShort(marker, args...)...)
		kept(t)
		if code != exitBadInput || !strings.Contains(errb, want) || out != "" {
			t.Fatalf("exit %d, stderr %q, %d bytes on stdout; want exit %d saying %q and no report", code, errb, len(out), exitBadInput, want)
		}
		if _, err := os.Stat(marker); err == nil {
			t.Fatal("the refusal came after the window was spent")
		}
	}
	t.Run("save over an observation", func(t *testing.T) {
		refused(t, "already holds an observation", "--save", dir)
	})
	t.Run("overwrite with a user's file inside", func(t *testing.T) {
		refused(t, "notes.txt", "--save", dir, "--overwrite")
	})
	t.Run("overwrite a lone observation", func(t *testing.T) {
		os.Remove(notes)
		os.RemoveAll(filepath.Dir(mine))
		if code, _, errb := runCLI(t, watchShort(marker, "--save", dir, "--overwrite")...); code != 0 {
			t.Fatalf("exit %d: %s", code, errb)
		}
		if b, err := os.ReadFile(index); err != nil || bytes.Equal(b, first) {
			t.Fatalf("the observation was not replaced (%v)", err)
		}
		entries, _ := os.ReadDir(root)
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), ".obs") {
				t.Errorf("left behind: %s", e.Name())
			}
		}
	})
}
