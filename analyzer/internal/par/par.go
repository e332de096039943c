// Package par runs independent pieces of analysis work on every core.
package par

import (
	"runtime"
	"sync"
)

// Do runs f(0), ..., f(n-1) on up to GOMAXPROCS goroutines and returns
// when all have finished. Each f writes only its own index's results.
func Do(n int, f func(i int)) {
	var wg sync.WaitGroup
	next := make(chan int)
	for range min(runtime.GOMAXPROCS(0), n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				f(i)
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
}
