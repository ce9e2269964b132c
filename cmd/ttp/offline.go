package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/decnet/ttp/abi"
	"github.com/decnet/ttp/dispatch"
	"github.com/decnet/ttp/host"
	"github.com/decnet/ttp/rules"
	"github.com/decnet/ttp/wasm"
)

// offline is the evaluation path `ttp tag` and `ttp rules test` share with the daemon: the
// same Host and Dispatcher, loaded once from a rules directory and a plugins directory.
type offline struct {
	d        *dispatch.Dispatcher
	h        *host.Host
	compiler *wasm.Compiler
	rules    []*rules.Rule
	lazy     *lazyPlugins // nil when every plugin loaded at start
}

// cacheDir is where compiled plugins are cached between runs: $TTP_CACHE, else the user's
// cache directory.
func cacheDir() string {
	if d := os.Getenv("TTP_CACHE"); d != "" {
		return d
	}
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "ttp", "wazero")
	}
	return ""
}

// loadOffline loads rules (reporting bad files on stderr and going on with the rest) and
// every plugin of pluginsDir (a missing directory means no plugins). It returns an error only
// when nothing usable loaded; partial is true when some file was refused.
//
// With lazy, a plugin whose source kinds are known from an earlier run waits for the first
// event of such a kind (offline.ensure); `ttp rules test`, which scores every lifter rule,
// loads them all.
func loadOffline(ctx context.Context, rulesDir, pluginsDir string, lazy bool, states map[string]rules.State, log *slog.Logger, stderr io.Writer) (o *offline, partial bool, err error) {
	loaded, err := loadRuleDir(rulesDir, stderr)
	if err != nil {
		if len(loaded) == 0 {
			return nil, true, err
		}
		printErrors(stderr, err)
		fmt.Fprintf(stderr, "ttp: going on with the %d rules that loaded\n", len(loaded))
		partial = true
	}
	compiler, err := host.NewCompiler(cacheDir())
	if err != nil {
		compiler, err = host.NewCompiler("")
		if err != nil {
			return nil, true, err
		}
	}
	d := dispatch.New(dispatch.Config{Logger: log})
	h, err := host.New(host.Config{Dispatcher: d, Compiler: compiler, Logger: log})
	if err != nil {
		return nil, true, err
	}
	changes := make([]rules.Change, 0, len(loaded)+len(states))
	for _, r := range loaded {
		changes = append(changes, rules.Change{Op: rules.RuleUpdated, ID: r.ID, Rule: r})
	}
	for id, st := range states {
		changes = append(changes, rules.Change{Op: rules.StateChanged, ID: id, State: st})
	}
	if err := h.ApplyRules(ctx, changes...); err != nil {
		return nil, true, err
	}
	o = &offline{d: d, h: h, compiler: compiler, rules: loaded}
	if pluginsDir != "" {
		if _, serr := os.Stat(pluginsDir); serr == nil && lazy {
			kinds := ""
			if c := cacheDir(); c != "" {
				kinds = filepath.Join(c, "kinds")
			}
			if o.lazy, err = newLazyPlugins(ctx, h, pluginsDir, kinds, stderr); err != nil {
				return nil, true, err
			}
			partial = partial || o.lazy.failed
		} else if serr == nil {
			if err := h.LoadPluginDir(ctx, pluginsDir); err != nil {
				printErrors(stderr, err)
				partial = true
			}
		} else if !errors.Is(serr, os.ErrNotExist) {
			return nil, true, serr
		}
	}
	return o, partial, nil
}

// ensure loads the plugins waiting for events of ev's kind (a session's commands included,
// since a session fans out into them); it reports whether a plugin loaded then was refused.
func (o *offline) ensure(ctx context.Context, kind string) (refused bool) {
	if o.lazy == nil {
		return false
	}
	before := o.lazy.failed
	o.lazy.ensure(ctx, kind)
	if kind == abi.KindSession {
		o.lazy.ensure(ctx, abi.KindCommand)
	}
	return o.lazy.failed && !before
}

func (o *offline) Close() {
	o.h.Close()
	o.compiler.Close(context.Background())
}

// defaultRulesDir is the --rules default of every command: the rules of a checkout, relative
// to where ttp runs.
const defaultRulesDir = "rules/ttp"

// loadRuleDir loads the rule files of dir. When dir is the default and does not exist (ttp
// installed and run away from a checkout), it loads the rules built into the binary instead
// and says so on stderr: a user who named a directory gets that directory or an error.
func loadRuleDir(dir string, stderr io.Writer) ([]*rules.Rule, error) {
	if dir == defaultRulesDir {
		if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
			loaded, err := rules.LoadBuiltin()
			fmt.Fprintf(stderr, "ttp: no %s here: using the %d rules built into this binary (--rules DIR for others)\n", dir, len(loaded))
			return loaded, err
		}
	}
	return rules.LoadDir(dir)
}
