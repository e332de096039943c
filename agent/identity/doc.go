// Package identity tells who is who on a host: for every PID, the
// service it belongs to and the version it runs, so that each sample the
// agent keeps is filed under (service, version), and deploying a new
// binary is a new version without anyone telling the agent.
//
// # Service, first that applies
//
//  1. The first configured Rule that matches (executable glob, command
//     line regexp, cgroup glob, systemd unit glob, container ID glob).
//     The operator's word beats every guess.
//  2. The systemd unit, from /proc/PID/cgroup: the innermost .service or
//     .scope in the path, so a user's app under user@UID.service is that
//     app. Session scopes (session-3.scope: every command of a login) and
//     init.scope (a systemd manager itself) are no service. The name
//     loses its type suffix ("nginx.service" is service "nginx"); the
//     systemd_unit label keeps it whole. A unit is what an operator
//     deploys and restarts, so it groups a service's processes (its
//     workers, its helpers) under the name the operator knows.
//  3. The container, from the same path (docker, containerd's CRI,
//     CRI-O and podman forms, cgroup v1 and v2: see containerOf), named
//     by its 12-digit short ID as `docker ps` shows it; the full ID is
//     the container_id label. A container beneath a unit (a runtime
//     whose containers sit inside its own service's cgroup) is the
//     container, not the unit: the deeper of the two names the service.
//  4. The executable's base name (/proc/PID/exe), else the process's
//     comm when the executable cannot be read (no ptrace permission, a
//     zombie).
//
// Kernel threads (PF_KTHREAD) are service "kernel", or with
// Options.KernelThreadsByName their name up to the first "/" (kworker,
// ksoftirqd); their version is the running kernel's GNU build ID from
// /sys/kernel/notes. Rules do not apply to them.
//
// The cgroup path rules match is the unified (v2, "0::") line's path
// when it is not "/", else the v1 name=systemd line's, else the first
// other line's that is not "/".
//
// # Version
//
// The build ID of the process's executable: the Go build ID (the
// .note.go.buildid ELF note, the string `go tool buildid` prints) when
// it has one, else the GNU build ID in hex (.note.gnu.build-id, as
// `readelf -n` prints it); a matching rule's version replaces it (the
// build_id label keeps the real one); "unknown" when unreadable. The
// file is read through /proc/PID/exe, which opens the very inode the
// process runs even in another mount namespace (a container) or after
// its path was replaced or deleted. ELF parsing is the standard
// library's debug/elf; note sections are read up to 64 KiB each.
//
// # Caches and their bounds
//
// Build IDs are cached by the executable's (device, inode, size, mtime):
// a rebuild at the same path is another key, so it is read again.
// At most Options.MaxExecutables (default 1,024) files, least recently
// used dropped first.
//
// Identities are cached per PID with the process's start time (field 22
// of /proc/PID/stat) and its executable's key: a reused PID, or one that
// called execve (same PID, same start time, another file), is resolved
// anew. A cache hit still costs a read of /proc/PID/stat and a stat of
// /proc/PID/exe. At most Options.MaxProcesses entries (default 8,192),
// least recently resolved dropped first: a process resolved every window
// stays unless more than that many others are resolved between two of
// its windows. An entry holds about 0.6 KiB (BenchmarkCacheEntryBytes: 613 B,
// the identity's strings and labels map), some 5 MiB at the bound
// whatever the churn: 1,000 process starts a second, each resolved,
// fill it in 8 s, and an evicted PID is only read again. Forget drops the
// entries of exited PIDs sooner; SetRules (a reload) drops them all. A
// process moved to another cgroup keeps its cached identity until then:
// re-reading every process's cgroup each window would double a hit's cost
// for a move that systemd and the runtimes make before the exec that is
// seen anyway.
//
// # What is never a label
//
// The command line and the environment: they carry passwords and tokens.
// The command line is read only when a rule matches on it.
package identity
