package bpf

// The BPF objects and their Go bindings (*_x86_bpfel.go, *_x86_bpfel.o)
// are committed so that building perfhound needs no clang. `make generate`
// writes c/vmlinux.h from the running kernel's BTF with bpftool, then runs
// these. CO-RE relocations let the objects load on other kernels with BTF.

//go:generate go tool bpf2go -go-package bpf -cc clang -cflags "-O2 -g -Wall -Werror" -target amd64 oncpu c/oncpu.bpf.c -- -Ic
//go:generate go tool bpf2go -go-package bpf -cc clang -cflags "-O2 -g -Wall -Werror" -target amd64 offcpu c/offcpu.bpf.c -- -Ic
//go:generate go tool bpf2go -go-package bpf -cc clang -cflags "-O2 -g -Wall -Werror" -target amd64 faults c/faults.bpf.c -- -Ic
//go:generate go tool bpf2go -go-package bpf -cc clang -cflags "-O2 -g -Wall -Werror" -target amd64 runqlat c/runqlat.bpf.c -- -Ic
//go:generate go tool bpf2go -go-package bpf -cc clang -cflags "-O2 -g -Wall -Werror" -target amd64 biolat c/biolat.bpf.c -- -Ic
//go:generate go tool bpf2go -go-package bpf -cc clang -cflags "-O2 -g -Wall -Werror" -target amd64 tcp c/tcp.bpf.c -- -Ic
//go:generate go tool bpf2go -go-package bpf -cc clang -cflags "-O2 -g -Wall -Werror" -target amd64 procs c/procs.bpf.c -- -Ic
//go:generate go tool bpf2go -go-package bpf -cc clang -cflags "-O2 -g -Wall -Werror" -target amd64 unwindwalk c/unwindwalk.bpf.c -- -Ic
