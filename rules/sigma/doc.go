// Package sigma reads Sigma detection rules (https://sigmahq.io) for Linux process creation and
// evaluates them on the command lines a honeypot records, as package shell reads them.
//
// A honeypot sees what an attacker typed, not the processes it started. Sigma's
// process_creation rules are written against process events: Image, CommandLine, ParentImage,
// ParentCommandLine. This package maps those fields onto the simple commands of a parsed line
// (see Fields) so that a Sigma rule keeps its meaning without being rewritten by hand:
//
//   - Image is the command's resolved program path (shell.Command.Image);
//   - CommandLine is the program and its arguments joined by blanks (shell.Command.CommandLine);
//   - ParentImage and ParentCommandLine are those of the command it was nested in (the shell
//     of `sh -c '...'`, the command whose `$(...)` holds it) or else piped from;
//   - a wrapper peeled off a command (sudo, env, nice, nohup, busybox...) is a process of its
//     own too: its Image is /usr/bin/<wrapper> and its CommandLine the command's text as
//     written, so that a rule about sudo or nice still sees it (the keywords and builtins
//     the shell runs itself, such as exec, command and time, are not processes).
//
// Values compare case-insensitively as Sigma says, except the program: a rule whose Image
// ends in /wget holds only for a command named exactly wget (on Linux WGET is another
// program). That makes Detection.Programs exact, so the rule engine indexes Sigma rules by
// program name; a View computes the fields of a command once for all the rules that ask.
//
// Two things use the package. The rule engine (package rules, `match.kind: sigma`) compiles a
// rule's kept detection with CompileDetection and calls Detection.Match per command. The
// importer (`ttp rules import-sigma`, Import) decodes SigmaHQ rule files with Decode and writes
// one ttp rule file per convertible rule with Convert, listing every other one with the reason
// (an *Error whose Reason groups it).
//
// The package imports nothing of package rules, so that package rules can import it.
package sigma
