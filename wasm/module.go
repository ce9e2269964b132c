package wasm

import (
	"context"
	"errors"
	"time"

	"github.com/decnet/ttp/abi"
	"github.com/decnet/ttp/wasm/hostfn"
	"github.com/decnet/ttp/wasm/internal/seal"
)

// Module is a plugin compiled and checked, ready to make instances: the ttp ABI loader
// (wazero) and the Extism loader (package wasm/extism) both produce one, and nothing above
// them branches on which. It is sealed (package wasm/internal/seal): every implementation is
// the runtime's, so what it promises holds for any Module a caller is given.
type Module interface {
	seal.Sealed
	// Manifest is the validated manifest the module described at load.
	Manifest() *abi.Manifest
	// SHA256 is the hex digest of the module's bytes, for lock files and logs.
	SHA256() string
	// NewInstance instantiates the module; each instance serves one call at a time.
	NewInstance(ctx context.Context) (Instance, error)
	// Close releases the compiled module and its runtime once no instance is in use.
	Close(ctx context.Context) error
}

// Instance is one instantiated plugin, sealed like Module.
type Instance interface {
	seal.Sealed
	// Configure sends the definitions of the rules the plugin owns.
	Configure(ctx context.Context, req *abi.ConfigureRequest) (*abi.ConfigureReply, error)
	// Tag runs the plugin on one event of a kind its manifest declares (kindIndex into
	// Manifest().Kinds) and appends its decoded, validated drafts to out. lim bounds what a
	// reply may name. After an error the instance must be discarded, except ErrRecordTooLarge
	// (the call was not made) and abi.ErrGuest (the plugin answered with an error reply).
	Tag(ctx context.Context, kindIndex int, ev *abi.Event, lim abi.ReplyLimits, out []abi.ReplyDraft) ([]abi.ReplyDraft, error)
	Close(ctx context.Context) error
}

// Limits are the per-plugin bounds every call runs under.
type Limits struct {
	Deadline    time.Duration // per call; default 50 ms
	MemoryPages uint32        // 64 KiB pages; default 1024 (64 MiB)
	PoolSize    int           // instances per plugin; default GOMAXPROCS
	// Retry is the wall-clock ceiling of the one retry a timed-out call gets, on a fresh
	// instance, where Deadline is counted in the call's own CPU time (see Retrier); default
	// max(20×Deadline, 1 s). A call's worst case is Deadline + Retry (plus making an
	// instance when none is idle).
	Retry time.Duration
}

// Defaults of Limits.
const (
	DefaultDeadline    = 50 * time.Millisecond
	DefaultMemoryPages = 1024
)

// RetryCeiling is l.Retry, or its default for l.Deadline (DefaultDeadline when unset):
// max(20×Deadline, 1 s).
func (l Limits) RetryCeiling() time.Duration {
	if l.Retry > 0 {
		return l.Retry
	}
	d := l.Deadline
	if d <= 0 {
		d = DefaultDeadline
	}
	return max(20*d, time.Second)
}

// Load errors, each wrapped with the module's path.
var (
	ErrABIVersion      = errors.New("unsupported ABI version marker")
	ErrMissingExport   = errors.New("missing required export")
	ErrForbiddenImport = errors.New("import outside the allowlist")
	ErrNotLocked       = errors.New("module not approved by the lock file")
	ErrConfigure       = errors.New("plugin refused its configuration")
	// ErrDuplicateName: two files carry a module of one manifest name. The second is refused
	// like any invalid module, so a copied file cannot take another plugin's rules or its
	// metrics' labels.
	ErrDuplicateName = errors.New("a module of this name is already loaded from another file")
)

// Call failures, the ones that count toward quarantine.
var (
	ErrTimeout   = errors.New("plugin call exceeded its deadline")
	ErrTrap      = errors.New("plugin trapped")
	ErrOutputCap = errors.New("plugin reply over the output cap")
	ErrBadReply  = errors.New("plugin reply undecodable")
)

// ErrRecordTooLarge is returned when an event's projection for a plugin is over
// abi.MaxRecord: the call is not made. It is the event's size, not the plugin's fault, so it
// neither counts toward quarantine nor discards the instance (the daemon accepts messages up
// to --max-message, which may be larger than a record).
var ErrRecordTooLarge = errors.New("event projection over the record limit")

// allowedImports are the WASI preview 1 functions a plugin may import: what a Go (or other)
// runtime needs to start. No directory is preopened and no socket exists, so even these give
// no file or network access.
var allowedImports = map[string]bool{
	"args_get": true, "args_sizes_get": true, "environ_get": true, "environ_sizes_get": true,
	"clock_time_get": true, "clock_res_get": true, "fd_write": true, "proc_exit": true,
	"random_get": true, "sched_yield": true, "fd_close": true, "fd_fdstat_get": true,
	"fd_prestat_get": true, "fd_prestat_dir_name": true, "fd_seek": true, "poll_oneoff": true,
	"fd_read": true, "fd_fdstat_set_flags": true,
}

// AllowedImport reports whether a module may import module.name: the WASI start-up functions,
// and the host's text functions (module "ttp", capability ttp_host_v1, package wasm/hostfn),
// which a module must also declare in its manifest.
func AllowedImport(module, name string) bool {
	return module == "wasi_snapshot_preview1" && allowedImports[name] || module == hostfn.Module && hostfn.Functions[name]
}
