// cgosort is the mixed walk's subject: Go calling C built without frame
// pointers, which sorts through libc's qsort calling back into C, until
// killed. Its stacks run main.main -> main.sortInC (Go, frame pointers)
// -> sort_forever -> qsort (libc) -> cmp (C by .eh_frame).
package main

/*
#cgo CFLAGS: -O2 -fomit-frame-pointer
#include <stdlib.h>

static volatile long sink;

__attribute__((noinline)) static long leaf(long x) { return x * 2654435761u ^ (x >> 13); }

static int cmp(const void *a, const void *b) {
	long x = *(const long *)a, y = *(const long *)b;
	sink += leaf(x ^ y);
	return (x > y) - (x < y);
}

static void sort_forever(int n) {
	long *v = malloc(n * sizeof(long));
	for (;;) {
		for (int i = 0; i < n; i++)
			v[i] = leaf(i ^ sink);
		qsort(v, n, sizeof(long), cmp);
	}
}
*/
import "C"

import "fmt"

//go:noinline
func sortInC() { C.sort_forever(4096) }

func main() {
	fmt.Println("ready")
	sortInC()
}
