// Command cowriebench generates synthetic Cowrie logs and measures the ingest's per-line path
// on them, for `make cowrie-bench` (RATIONALE.md, "Cowrie ingest"):
//
//	cowriebench gen -n 1000000 -o cowrie.json   write a log of n lines (internal/cowriegen)
//	cowriebench parse [-n LINES] FILE           decode and sessionize it, events discarded
//
// parse prints lines, events, lines/s (per second of wall time and per second of CPU time) and
// the process's peak resident size (getrusage ru_maxrss), so that runs on logs of different
// lengths show whether memory stays flat.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"syscall"
	"time"

	"github.com/decnet/ttp/abi"
	"github.com/decnet/ttp/ingest/cowrie"
	"github.com/decnet/ttp/internal/cowriegen"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: cowriebench gen -n N -o FILE | parse [-n LINES] FILE")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "gen":
		err = genCmd(os.Args[2:])
	case "parse":
		err = parseCmd(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "cowriebench:", err)
		os.Exit(1)
	}
}

func genCmd(args []string) error {
	fs := flag.NewFlagSet("gen", flag.ExitOnError)
	n := fs.Int("n", 1_000_000, "lines")
	out := fs.String("o", "", "output file")
	seed := fs.Uint64("seed", 1, "seed")
	fs.Parse(args)
	if *out == "" {
		return fmt.Errorf("gen: -o FILE is required")
	}
	f, err := os.Create(*out)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := cowriegen.Write(f, *n, *seed, time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC))
	if err != nil {
		return err
	}
	fmt.Printf("%s: %d lines; event ids:", *out, *n)
	for _, id := range []string{"cowrie.session.connect", "cowrie.client.version", "cowrie.client.kex", "cowrie.login.failed", "cowrie.login.success",
		"cowrie.client.size", "cowrie.command.input", "cowrie.command.failed", "cowrie.session.file_download", "cowrie.log.closed",
		"cowrie.direct-tcpip.request", "cowrie.direct-tcpip.data", "cowrie.session.closed", "cowrie.virustotal.scanurl"} {
		fmt.Printf(" %s %.1f%%", id[len("cowrie."):], 100*float64(st[id])/float64(*n))
	}
	fmt.Println()
	return f.Close()
}

// limited stops after n lines.
type limited struct {
	r    io.Reader
	left int
}

func (l *limited) Read(p []byte) (int, error) {
	if l.left <= 0 {
		return 0, io.EOF
	}
	n, err := l.r.Read(p)
	for i := 0; i < n; i++ {
		if p[i] == '\n' {
			if l.left--; l.left == 0 {
				return i + 1, nil
			}
		}
	}
	return n, err
}

func parseCmd(args []string) error {
	fs := flag.NewFlagSet("parse", flag.ExitOnError)
	n := fs.Int("n", 0, "read only the first n lines (0: all)")
	fs.Parse(args)
	if fs.NArg() != 1 {
		return fmt.Errorf("parse: one FILE")
	}
	f, err := os.Open(fs.Arg(0))
	if err != nil {
		return err
	}
	defer f.Close()
	var r io.Reader = f
	if *n > 0 {
		r = &limited{r: f, left: *n}
	}
	d := cowrie.New(cowrie.Config{})
	events := 0
	cpu0 := cpuTime()
	start := time.Now()
	err = d.ReadFrom(fs.Arg(0), r, func(evs []abi.Event) error { events += len(evs); return nil }, func(error) {})
	if err != nil {
		return err
	}
	events += len(d.Flush(nil))
	took, cpu := time.Since(start), cpuTime()-cpu0
	c := d.Counts()
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	fmt.Printf("%d lines, %d events, %d malformed in %v wall, %v CPU: %.0f lines/s wall, %.0f lines per CPU-second, peak RSS %.1f MiB\n",
		c.Lines, events, c.Malformed, took.Round(time.Millisecond), cpu.Round(time.Millisecond),
		float64(c.Lines)/took.Seconds(), float64(c.Lines)/cpu.Seconds(), float64(ru.Maxrss)/1024)
	return nil
}

// cpuTime is the CPU time (user and system, every thread: the garbage collector's included)
// the process has used. On a shared machine it measures the work where wall time measures
// the neighbours too.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
