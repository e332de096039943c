// frames.c: functions with the call frame shapes distribution code has,
// compiled with -O2 -fomit-frame-pointer by the ehframe tests: registers
// saved by pushes, a frame on rbp (alloca), a stack realigned for an
// over-aligned local, and a leaf. Its rule tables are compared with
// readelf's.
//
// "frames block" is the live walk's subject: main -> block_outer
// (realigned) -> block_alloca (a frame on rbp) -> raise(SIGUSR1) in libc;
// the signal's handler -> blocker, which says "ready" and waits in
// pause(), inside libc, for the test to walk its stack. "frames spin",
// "sleep" and "fault" (below) are the eBPF walker's; "frames jit" maps
// anonymous executable memory, as a JIT does, and waits; "frames dlopen
// LIB" waits for SIGUSR2, then loads LIB (plugin.c) and spins in it: code
// mapped after the walker was told the process's mappings.
#include <alloca.h>
#include <dlfcn.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

__attribute__((noinline)) static long leaf(long x) { return x * 2654435761u ^ (x >> 13); }

__attribute__((noinline)) static long pushes(long a, long b, long c, long d, long e, long f) {
	long s = 0;
	for (long i = 0; i < a; i++)
		s += leaf(i ^ b) + leaf(c + i) * leaf(d - i) + (e ^ f);
	return s;
}

__attribute__((noinline)) static long on_rbp(int n) {
	char *buf = alloca(n);
	memset(buf, n & 0x7f, n);
	long s = 0;
	for (int i = 0; i < n; i++)
		s += leaf(buf[i]);
	return s;
}

__attribute__((noinline)) static void fill(char *p, int n, int len) { memset(p, n, len); }

__attribute__((noinline)) static long realigned(int n) {
	_Alignas(64) char block[256];
	fill(block, n, sizeof block);
	return leaf(block[n & 0xff]) + pushes(n, n, n, n, n, n);
}

// Arguments on the stack and an over-aligned local: gcc realigns through a
// DRAP register and says where the CFA is by expression.
__attribute__((noinline)) static long drap(long a, long b, long c, long d, long e, long f, long g, long h) {
	_Alignas(64) char block[256];
	fill(block, (int)(a ^ h), sizeof block);
	return leaf(block[g & 0xff]) + b + c + d + e + f;
}

__attribute__((noinline)) static void blocker(void) {
	write(1, "ready\n", 6);
	for (;;)
		pause();
}

static void handler(int sig) {
	(void)sig;
	blocker();
}

static volatile long sink;

__attribute__((noinline)) static long block_alloca(int n) {
	char *buf = alloca(n);
	memset(buf, 1, n);
	raise(SIGUSR1);
	sink = buf[n - 1];
	return sink;
}

__attribute__((noinline)) static long block_outer(int n) {
	_Alignas(64) char block[256];
	fill(block, n, sizeof block);
	long r = block_alloca(n + block[3]);
	sink = r;
	return r + block[5];
}

// "frames spin", "frames sleep" and "frames fault" are the eBPF walker's
// subjects: main -> work_outer (realigned) -> work_alloca (a frame on
// rbp) -> the mode's work, over and over, until killed. spin: qsort in
// libc -> cmp -> leaf (on CPU, through libc both ways); sleep: usleep in
// libc (off CPU in clock_nanosleep); fault: a fresh mapping filled by
// memset in libc (page faults in it), unmapped again; clock:
// clock_gettime, in libc and the vDSO (on CPU).
static int cmp(const void *a, const void *b) {
	long x = *(const long *)a, y = *(const long *)b;
	sink += leaf(x ^ y);
	return (x > y) - (x < y);
}

enum mode { SPIN, SLEEP, FAULT, CLOCK };

__attribute__((noinline)) static long work_alloca(enum mode m, int n) {
	long *v = alloca(n * sizeof(long));
	for (;;) {
		for (int i = 0; i < n; i++)
			v[i] = leaf(i ^ sink);
		switch (m) {
		case SPIN:
			qsort(v, n, sizeof(long), cmp);
			break;
		case SLEEP:
			usleep(200);
			break;
		case CLOCK: {
			struct timespec ts;
			for (int i = 0; i < 1000; i++) {
				clock_gettime(CLOCK_MONOTONIC, &ts);
				sink += ts.tv_nsec;
			}
			break;
		}
		case FAULT: {
			size_t len = 64 * 4096;
			char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
			if (p == MAP_FAILED)
				abort();
			memset(p, (int)v[1], len);
			sink += p[len - 1];
			munmap(p, len);
			break;
		}
		}
		sink += v[n / 2];
	}
	return sink;
}

__attribute__((noinline)) static long work_outer(enum mode m, int n) {
	_Alignas(64) char block[256];
	fill(block, n, sizeof block);
	long r = work_alloca(m, n + block[7]);
	sink = r;
	return r + block[9];
}

static volatile sig_atomic_t told;

static void tell(int sig) {
	(void)sig;
	told = 1;
}

__attribute__((noinline)) static long dlopened(const char *lib) {
	void *h = dlopen(lib, RTLD_NOW);
	if (!h)
		abort();
	long (*spin)(long) = (long (*)(long))dlsym(h, "plugin_spin");
	if (!spin)
		abort();
	return spin(64) + sink;
}

int main(int argc, char **argv) {
	if (argc > 2 && strcmp(argv[1], "dlopen") == 0) {
		signal(SIGUSR2, tell);
		write(1, "ready\n", 6);
		while (!told)
			usleep(1000);
		return (int)dlopened(argv[2]);
	}
	if (argc > 1 && strcmp(argv[1], "jit") == 0) {
		// Anonymous executable memory, as a JIT's code is, then a wait.
		if (mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) == MAP_FAILED)
			abort();
		write(1, "ready\n", 6);
		for (;;)
			pause();
	}
	static const char *const modes[] = {[SPIN] = "spin", [SLEEP] = "sleep", [FAULT] = "fault", [CLOCK] = "clock"};
	for (int m = SPIN; argc > 1 && m <= CLOCK; m++) {
		if (strcmp(argv[1], modes[m]) == 0) {
			write(1, "ready\n", 6);
			return (int)work_outer((enum mode)m, m == SPIN ? 4096 : 16);
		}
	}
	if (argc > 1 && strcmp(argv[1], "block") == 0) {
		signal(SIGUSR1, handler);
		return (int)block_outer(100);
	}
	int n = argc > 1 ? atoi(argv[1]) : 1000;
	printf("%ld\n", pushes(n, 1, 2, 3, 4, 5) + on_rbp(n) + realigned(n) + drap(n, 1, 2, 3, 4, 5, 6, 7));
	return 0;
}
