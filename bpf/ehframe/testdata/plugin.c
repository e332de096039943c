// plugin.c: the library "frames dlopen" loads when told to, built as
// distribution code is (-O2 -fomit-frame-pointer -shared): code the
// eBPF walker first meets after the process's mappings were described.
static volatile long sink;

__attribute__((noinline)) static long mix(long x) { return x * 2654435761u ^ (x >> 13); }

// A realigned frame, as in frames.c: its caller is found by the table.
__attribute__((noinline)) static long plugin_inner(long n) {
	_Alignas(64) char block[128];
	for (int i = 0; i < 128; i++)
		block[i] = (char)(n + i);
	long s = 0;
	for (long i = 0; i < n * 64; i++)
		s += mix(i ^ block[i & 127]);
	return s;
}

long plugin_spin(long n) {
	for (;;)
		sink += plugin_inner(n + (sink & 1));
	return sink;
}
