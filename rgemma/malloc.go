package rgemma

import (
	"os"
	"strings"
)

// MallocTunables is a GLIBC_TUNABLES value that makes the XLA CPU backend
// faster. XLA allocates the temporary buffers of each execution in one block
// (263 MB for a training step of the small preset at 4×256 tokens). With
// glibc's defaults the block is mapped and unmapped on every call: threads
// other than the first allocate from arenas that serve large requests with
// mmap. The page faults of touching the fresh pages took about a quarter of
// the step (seen with perf and strace). With one arena, no mmap and no
// trimming, freed blocks are reused: the step took 300 ms instead of 420 ms.
// The price is that the process keeps its peak heap instead of returning
// freed memory to the system.
//
// glibc reads GLIBC_TUNABLES only when a process starts, and mallopt cannot
// change the arena count once threads have their arenas, so the setting must
// be in the environment before the program runs. The rgemma command re-runs
// itself with it (see NeedsMallocRerun); other programs can be started with
// GLIBC_TUNABLES set to this value.
const MallocTunables = "glibc.malloc.arena_max=1:glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=1099511627776"

// NeedsMallocRerun reports whether a program should re-run itself with
// GLIBC_TUNABLES=MallocTunables. It returns false when GLIBC_TUNABLES is
// already set (by the user, or by an earlier re-run) and when
// RGEMMA_MALLOC_TUNING is 0 or false.
func NeedsMallocRerun() bool {
	if v := os.Getenv("RGEMMA_MALLOC_TUNING"); v == "0" || strings.EqualFold(v, "false") {
		return false
	}
	_, set := os.LookupEnv("GLIBC_TUNABLES")
	return !set
}
