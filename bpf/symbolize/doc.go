//go:build linux

// Package symbolize turns the raw instruction addresses of sampled stacks
// (bpf_get_stackid: a kernel and a user stack, leaf first) of any process on
// the host into a pprof profile with mappings, locations, functions and
// labels.
//
// A Symbolizer keeps three things: a snapshot of each watched process's
// executable mappings (/proc/PID/maps), an LRU cache of parsed objects keyed
// by build ID (or by device, inode, size and mtime when a file has none),
// and the kernel's text symbols from kallsyms. A Builder, made per profile,
// resolves each sample's frames through it:
//
//	s := symbolize.New(symbolize.Options{})
//	s.Watch(pid) // when the process starts or execs; again after dlopen
//	b := s.NewBuilder(sampleTypes, periodType, period)
//	b.Add(symbolize.Sample{PID: pid, User: user, Kernel: kernel, Values: v})
//	p := b.Profile()
//
// # What resolves, and how
//
//   - Kernel: text symbols (t, T, w, W) of kallsyms, without the __pfx_
//     padding; one mapping "[kernel.kallsyms]", and one per module
//     ("[nf_tables]") and for BPF programs ("[bpf]"). kallsyms gives no
//     sizes: a symbol ends at the next of its module, the kernel's text at
//     _etext, and the last symbol of a module at most 64 KiB on (16 KiB for
//     [bpf]). An address past these misses, and kallsyms is read again, at
//     most every 10 s (a module or program loaded since).
//   - User ELF files: .symtab, else .dynsym; for Go, .gopclntab through
//     debug/gosym, which gives file:line too and survives -ldflags='-s -w'.
//     Its functions are offsets from runtime.text: without that symbol, the
//     address comes from the table's header or, in a PIE, from the dynamic
//     relocations; failing both it is taken as the start of .text, wrong
//     after C startup code (external linking), which the object's warning
//     says.
//     A runtime address becomes a link-time one through the PT_LOAD segment
//     holding its file offset, which handles PIE and shared libraries.
//   - The vDSO: its image read from /proc/PID/mem (or this process's own),
//     parsed as ELF.
//   - Files are opened as the process sees them, through /proc/PID/root,
//     and through /proc/PID/map_files when that is another inode (a
//     container's overlay, a replaced or deleted file).
//
// Frames after the first of each stack are return addresses: they are
// looked up one byte back, inside the call instruction, and keep their own
// address in Location.Address, as perf and pprof do.
//
// # Traps
//
//   - A snapshot is what the process had mapped when Watch ran. Call Watch
//     again when it execs: frames of the new image would otherwise resolve
//     against the old one. Libraries loaded later are picked up once per
//     Builder, when a frame falls outside every known mapping.
//   - Stacks of a process that was never watched and has exited cannot be
//     resolved: its user stack becomes one "[unknown]" location, counted in
//     Stats. Watch processes when they start (a sched_process_exec event).
//   - Inlined calls are not expanded: a Go frame carries the function that
//     holds the code, with the file:line of the innermost inlined call, as
//     debug/gosym reports it. C and C++ frames have function names only (no
//     DWARF is read). A C++ or Rust symbol's Function is named as pprof
//     shows it by default (demangled, without parameters or template
//     arguments: os::PlatformEvent::park), the symbol kept as its
//     SystemName, as pprof's own symbolizer does.
//   - A Builder is not safe for concurrent use; the Symbolizer is.
//
// # Memory
//
// No file descriptor stays open. An object keeps its PT_LOAD table and a
// sorted symbol table of 12 bytes a symbol plus the names in one string; a
// Go object also keeps its .gopclntab mapped from the file, read in place,
// whose pages are given back after parsing and after each Profile. That
// mapping holds a reference to the file while the object is cached: a
// deleted or replaced Go binary's disk space is not freed until the object
// is evicted or the Symbolizer closed. Caching the Go toolchain's compile
// binary (26 MB file, 20k functions, 8 MB .gopclntab) retains 1.1 MB of
// heap, its symbols (TestMemoryCompile; 3.1 MB when debug/gosym read the
// table: its cache of every function name came on top of the symtab's
// copy); resolving every one of its functions faults in 5 MB of
// file-backed pages, given back at the next Profile. Reading a symbol table
// is budgeted: one whose debug/elf reading (an elf.Symbol of about 100
// bytes an entry, every name copied) is over the budget is read in place
// instead (bigsymtab.go): scanned from a mapping of the file, 14 bytes a
// function kept, its names left in the file's string table, mapped, and
// copied out when a lookup asks. node (98 MB, 78k functions, 7 MB of
// names) then retains 1.1 MB of heap, parsed in 190 ms; read by debug/elf
// it was over the budget, and so were its .dynsym and .eh_frame: every frame
// was "[node]". This kernel's kallsyms
// (122k text symbols, 64k once the __pfx_ padding is skipped) takes 2.2 MB.
// The cache is bounded by count (MaxObjects) and by bytes
// (MaxObjectBytes), and the snapshots by MaxProcesses.
//
// # Why it is written here
//
// The parsing is the standard library's: debug/elf reads symbols, segments
// and notes, debug/gosym reads the line tables of Go before 1.18. From Go
// 1.18 on the table is read here (pclntab.go, checked against gosym on
// real binaries): gosym keeps every function name it decodes, in a cache
// its caller cannot drop. What is ours is the glue
// between them, /proc and pprof: mapping snapshots that outlive the
// process, load bias, the build-ID cache and its bounds, kallsyms, the vDSO,
// and profile deduplication. No maintained library offers that without a
// heavy dependency: Pyroscope's ebpf/symtab and Parca's symbolizer are
// parts of large agents, and pprof's own symbolizer shells out to binutils
// and expects the binaries on the machine that reads the profile.
package symbolize
