package diagnose

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/perfhound/perfhound/agent/collect"
	"github.com/perfhound/perfhound/agent/identity"
)

func TestCheckPID(t *testing.T) {
	if err := checkPID(collect.Env{}, os.Getpid()); err != nil {
		t.Errorf("this process: %v", err)
	}
	for _, pid := range []int{0, -3} {
		if err := checkPID(collect.Env{}, pid); err == nil || !strings.Contains(err.Error(), "not a PID") {
			t.Errorf("pid %d: %v", pid, err)
		}
	}
	if err := checkPID(collect.Env{}, 1<<30); !errors.Is(err, ErrNoProcess) {
		t.Errorf("no such process: %v", err)
	}
	// A thread of this process other than the main one.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Skip(err)
	}
	for _, task := range tasks {
		if task.Name() == strconv.Itoa(os.Getpid()) {
			continue
		}
		tid, _ := strconv.Atoi(task.Name())
		err := checkPID(collect.Env{}, tid)
		if err == nil || !strings.Contains(err.Error(), "is a thread of process "+strconv.Itoa(os.Getpid())) {
			t.Errorf("thread %d: %v", tid, err)
		}
		return
	}
	t.Skip("no second thread to try")
}

// TestServesItself checks the URL's listener against what the endpoint
// says it is: this test process serving its own command line matches, one
// serving another's does not (a proxy in front of the service).
func TestServesItself(t *testing.T) {
	own, err := os.ReadFile("/proc/self/cmdline")
	if err != nil {
		t.Skip(err)
	}
	serve := func(cmdline []byte) *httptest.Server {
		return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/debug/pprof/cmdline" {
				http.NotFound(w, r)
				return
			}
			w.Write(cmdline)
		}))
	}
	same := serve(own)
	defer same.Close()
	other := serve([]byte("/usr/bin/some-proxy\x00-listen\x00:6060"))
	defer other.Close()
	ctx := context.Background()
	if !servesItself(ctx, same.URL, collect.Env{}, os.Getpid()) {
		t.Error("the process serving its own command line was not recognised")
	}
	if !servesItself(ctx, same.URL+"/debug/pprof/", collect.Env{}, os.Getpid()) {
		t.Error("a URL under /debug/pprof/ was not taken for its base")
	}
	if servesItself(ctx, other.URL, collect.Env{}, os.Getpid()) {
		t.Error("a listener serving another program's command line was taken for it")
	}
	if pid, ok := identity.ListenerPID(ctx, same.URL); !ok || pid != os.Getpid() {
		t.Errorf("listener of %s: pid %d, %v; want this process %d", same.URL, pid, ok, os.Getpid())
	}
}

func TestIntervalFloor(t *testing.T) {
	for _, c := range []struct {
		opts Options
		min  time.Duration
	}{
		{Options{}, MinHostInterval},
		{Options{PID: 1}, MinProcessInterval},
		{Options{Command: []string{"true"}}, MinProcessInterval},
		{Options{URL: "http://127.0.0.1:6060"}, MinProcessInterval},
	} {
		if got := MinInterval(c.opts); got != c.min {
			t.Errorf("MinInterval(%+v) = %v, want %v", c.opts, got, c.min)
		}
		for _, iv := range []time.Duration{time.Millisecond, c.min - time.Millisecond} {
			o := c.opts
			o.Interval, o.Duration = iv, time.Second
			// Refused before anything is watched or started.
			if _, err := Watch(context.Background(), o); !errors.Is(err, ErrInterval) || !strings.Contains(err.Error(), c.min.String()) {
				t.Errorf("Watch(%+v): %v, want ErrInterval naming %v", o, err, c.min)
			}
		}
		o := c.opts
		o.Interval = c.min
		if err := CheckInterval(o); err != nil {
			t.Errorf("the floor itself refused: %v", err)
		}
	}
}

// TestOptionsTarget: what the user names is the target its observation
// names, described in the same words.
func TestOptionsTarget(t *testing.T) {
	for _, c := range []struct {
		opts Options
		want string
	}{
		{Options{}, "the host"},
		{Options{PID: 42}, "process 42"},
		{Options{Command: []string{"./server", "-p", "80"}}, "command ./server -p 80"},
		{Options{URL: "http://127.0.0.1:6060"}, "http://127.0.0.1:6060"},
	} {
		if got := c.opts.Target().Describe(); got != c.want {
			t.Errorf("%+v: %q, want %q", c.opts, got, c.want)
		}
	}
}
