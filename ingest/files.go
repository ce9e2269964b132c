package ingest

import (
	"bufio"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"
)

// Open opens a log file for reading, decompressing it when it is gzip. Compression is told by
// the file's first two bytes (the gzip magic 1f 8b), not by its name: logrotate and Cowrie
// operators compress with and without a .gz suffix. "-" is standard input (stdin).
func Open(path string, stdin io.Reader) (io.ReadCloser, error) {
	var r io.Reader = stdin
	var f *os.File
	if path != "-" {
		var err error
		if f, err = os.Open(path); err != nil {
			return nil, err
		}
		r = f
	}
	br := bufio.NewReaderSize(r, 64<<10)
	magic, _ := br.Peek(2)
	if len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			if f != nil {
				f.Close()
			}
			return nil, fmt.Errorf("%s: gzip: %w", path, err)
		}
		return readCloser{zr, f}, nil
	}
	return readCloser{br, f}, nil
}

type readCloser struct {
	io.Reader
	f *os.File
}

func (r readCloser) Close() error {
	if z, ok := r.Reader.(*gzip.Reader); ok {
		z.Close()
	}
	if r.f != nil {
		return r.f.Close()
	}
	return nil
}

// rotated matches the suffix a log rotation adds to a file name: a date (Cowrie's daily
// rotation writes cowrie.json.2026-12-05; Twisted's DailyLogFile cowrie.json.2026_12_5) or a
// number (logrotate: cowrie.json.1, cowrie.json.2.gz), each with an optional .gz.
var rotated = regexp.MustCompile(`\.(?:(\d{4})[-_](\d{1,2})[-_](\d{1,2})|(\d{1,4}))(?:\.gz)?$`)

// SortRotated orders the files of one log oldest first, so that sessions and login windows
// read in time order: dated files by date, then numbered ones from the highest number down
// (logrotate's .1 is the most recent), then the files without a rotation suffix (the live
// file, "-") in the order given. The order among files of the same rank is kept.
func SortRotated(paths []string) []string {
	type key struct {
		rank int
		v    int
	}
	keyOf := func(p string) key {
		m := rotated.FindStringSubmatch(p)
		switch {
		case m == nil:
			return key{2, 0}
		case m[4] != "":
			n, _ := strconv.Atoi(m[4])
			return key{1, -n}
		}
		y, _ := strconv.Atoi(m[1])
		mo, _ := strconv.Atoi(m[2])
		d, _ := strconv.Atoi(m[3])
		return key{0, y*10000 + mo*100 + d}
	}
	out := slices.Clone(paths)
	slices.SortStableFunc(out, func(a, b string) int {
		ka, kb := keyOf(a), keyOf(b)
		if ka.rank != kb.rank {
			return ka.rank - kb.rank
		}
		return ka.v - kb.v
	})
	return out
}
