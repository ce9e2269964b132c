package shell

// IsWrapper reports whether name (a base name) is a wrapper that Parse peels off the command
// it runs (sudo, env, nohup, busybox...; see Command.Wrappers). A caller that indexes
// commands by program name needs it: a peeled command no longer carries the wrapper's name.
func IsWrapper(name string) bool {
	_, ok := wrappers[name]
	return ok
}
