//go:build !ttpfault

// Package fault is the crash-injection hook of the crash test (cmd/ttp TestCrashSafety): the
// worker calls At at the two points where a crash matters most (tags committed, nothing
// published; published, nothing marked or acked), and a binary built with the tag ttpfault
// kills itself there when TTP_FAULT says so ("after-commit:N" or "after-publish:N": at the
// Nth passage).
//
// A build tag rather than a flag, an environment variable or a Config field: an ordinary
// build (make build, go install) has no way in at all, since this file's At does nothing and
// is inlined away, so no user, configuration file or stray variable can make a production
// daemon kill itself; and the package is internal, so nothing outside the module can call
// it. The crash test builds its binary with -tags ttpfault (cmd/ttp ttpBinary).
package fault

// Enabled reports whether this binary was built with the fault hook (-tags ttpfault).
const Enabled = false

// At marks an injection point. Without the ttpfault tag it does nothing.
func At(point string) {}
