package api

import (
	"container/list"
	"context"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/perfhound/perfhound/agent/pprofui"
)

// ui serves pprof's web UI over a service's range: /ui/SERVICE/FROM/TO/
// is the index of the range's merged profiles (agent/pprofui), and the
// rest of the path pprof's views. FROM and TO are RFC3339 times, never
// relative ones: pprof's pages link to each other, and a range that moved
// between two clicks would show another profile.
func (s *Server) ui(w http.ResponseWriter, r *http.Request) {
	service := r.PathValue("service")
	from, to, err := s.uiRange(service, r.PathValue("from"), r.PathValue("to"))
	if err != nil {
		writeError(w, err)
		return
	}
	key := service + "\x00" + stamp(from) + "\x00" + stamp(to)
	e, err := s.uis.get(key, func() (*pprofui.Server, error) {
		if _, err := s.service(service, "", "service"); err != nil {
			return nil, err
		}
		release, err := s.acquire()
		if err != nil {
			return nil, err
		}
		defer release()
		// Not the request's context: other requests wait for this build.
		o, err := s.gather(context.Background(), Query{Service: service, From: from, To: to}, "from", true)
		if err != nil {
			return nil, err
		}
		o.Meta.Target.Labels = nil
		o.Meta.Target.App = service
		return pprofui.New(o, pprofui.Options{ErrorLog: s.opts.ErrorLog})
	})
	if err != nil {
		writeError(w, err)
		return
	}
	defer s.uis.put(e)
	r2 := new(http.Request)
	*r2 = *r
	r2.URL = new(url.URL)
	*r2.URL = *r.URL
	r2.URL.Path = "/" + r.PathValue("rest")
	r2.URL.RawPath = ""
	e.srv.ServeHTTP(w, r2)
}

// uiSlash sends /ui/SERVICE/FROM/TO to the index, whose relative links
// need the slash.
// The Location is relative ("./TO/", the colons of a time kept out of
// the first segment), so that it holds under a prefix the caller strips.
func (s *Server) uiSlash(w http.ResponseWriter, r *http.Request) {
	p := r.URL.EscapedPath()
	w.Header().Set("Location", "./"+p[strings.LastIndex(p, "/")+1:]+"/")
	w.WriteHeader(http.StatusMovedPermanently)
}

func (s *Server) uiRange(service, fromS, toS string) (from, to time.Time, err error) {
	if err := checkName("service", service); err != nil {
		return from, to, err
	}
	if from, err = time.Parse(time.RFC3339Nano, fromS); err != nil {
		return from, to, badParam("from", "%s is not an RFC3339 time (2006-01-02T15:04:05Z)", printable(fromS))
	}
	if to, err = time.Parse(time.RFC3339Nano, toS); err != nil {
		return from, to, badParam("to", "%s is not an RFC3339 time (2006-01-02T15:04:05Z)", printable(toS))
	}
	return from, to, checkSpan("from", from, to, s.opts.MaxRange)
}

// uiCache keeps the pprof UIs of the last few ranges asked for: pprof
// builds a profile's UI on the first view, and every click of a flame
// graph is a request. An evicted UI is closed once no request uses it.
type uiCache struct {
	mu      sync.Mutex
	max     int
	lru     *list.List // of *uiEntry, the most recent first
	byKey   map[string]*list.Element
	closed  bool
	closeEr error // the first error closing a UI
}

type uiEntry struct {
	key     string
	srv     *pprofui.Server
	users   int
	evicted bool
	ready   chan struct{} // closed once srv or err is set
	err     error
}

func newUICache(max int) *uiCache {
	return &uiCache{max: max, lru: list.New(), byKey: map[string]*list.Element{}}
}

var errClosed = &statusError{http.StatusServiceUnavailable, "the API is shutting down"}

// get returns the UI of key, building it with build once (concurrent
// requests for the same key wait for the one build). A failed build is not
// kept. The caller puts the entry back when its request is done.
func (c *uiCache) get(key string, build func() (*pprofui.Server, error)) (*uiEntry, error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, errClosed
	}
	if el, ok := c.byKey[key]; ok {
		e := el.Value.(*uiEntry)
		e.users++
		c.lru.MoveToFront(el)
		c.mu.Unlock()
		<-e.ready
		if e.err != nil {
			c.put(e)
			return nil, e.err
		}
		return e, nil
	}
	e := &uiEntry{key: key, users: 1, ready: make(chan struct{})}
	c.byKey[key] = c.lru.PushFront(e)
	c.evict()
	c.mu.Unlock()

	e.srv, e.err = build()
	close(e.ready)
	if e.err != nil {
		c.mu.Lock()
		if el, ok := c.byKey[key]; ok && el.Value == e {
			c.lru.Remove(el)
			delete(c.byKey, key)
		}
		c.mu.Unlock()
		c.put(e)
		return nil, e.err
	}
	return e, nil
}

// evict drops the least recently used entries past max. The caller holds
// c.mu.
func (c *uiCache) evict() {
	for c.lru.Len() > c.max {
		el := c.lru.Back()
		e := el.Value.(*uiEntry)
		c.lru.Remove(el)
		delete(c.byKey, e.key)
		e.evicted = true
		if e.users == 0 {
			c.closeEntry(e)
		}
	}
}

func (c *uiCache) closeEntry(e *uiEntry) {
	if e.srv != nil {
		if err := e.srv.Close(); err != nil && c.closeEr == nil {
			c.closeEr = err
		}
		e.srv = nil
	}
}

// put returns an entry get gave out.
func (c *uiCache) put(e *uiEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e.users--
	if e.users == 0 && e.evicted {
		c.closeEntry(e)
	}
}

// open is how many UIs are open, for tests.
func (c *uiCache) open() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for el := c.lru.Front(); el != nil; el = el.Next() {
		if el.Value.(*uiEntry).srv != nil {
			n++
		}
	}
	return n
}

func (c *uiCache) close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	for el := c.lru.Front(); el != nil; el = el.Next() {
		e := el.Value.(*uiEntry)
		e.evicted = true
		if e.users == 0 {
			c.closeEntry(e)
		}
	}
	c.lru.Init()
	c.byKey = map[string]*list.Element{}
	return c.closeEr
}
