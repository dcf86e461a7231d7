// Package archive writes and reads the gateway's archive of accepted
// visits: one gzip-compressed JSON-lines file per day. The archive is the
// recovery path when an outage outlasts the cloud stream's retention, or
// when the on-prem database was restored from an older backup.
package archive

import (
	"bufio"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/visitrelay/visitrelay/internal/visit"
)

// Record is one archived visit with its sequence in the cloud stream.
type Record struct {
	Sequence uint64         `json:"sequence"`
	Visit    visit.Envelope `json:"visit"`
}

const (
	prefix    = "visits-"
	suffix    = ".jsonl.gz"
	dayLayout = "2006-01-02"
)

// FileName returns the archive file name for the day of t in UTC.
func FileName(t time.Time) string {
	return prefix + t.UTC().Format(dayLayout) + suffix
}

// Append writes records to the day file in dir as one more gzip member and
// fsyncs it. Readers of concatenated gzip members see one stream, so a file
// grows batch by batch without being rewritten.
func Append(dir string, day time.Time, records []Record) error {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("create archive directory: %w", err)
	}
	path := filepath.Join(dir, FileName(day))
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o640)
	if err != nil {
		return fmt.Errorf("open archive file: %w", err)
	}
	zw := gzip.NewWriter(f)
	enc := json.NewEncoder(zw)
	for _, r := range records {
		if err := enc.Encode(r); err != nil {
			f.Close()
			return fmt.Errorf("write archive %s: %w", path, err)
		}
	}
	if err := zw.Close(); err != nil {
		f.Close()
		return fmt.Errorf("write archive %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync archive %s: %w", path, err)
	}
	return f.Close()
}

// Prune deletes the day files in dir older than keep, and returns their names.
func Prune(dir string, keep time.Duration, now time.Time) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read archive directory: %w", err)
	}
	cutoff := now.UTC().Add(-keep)
	var removed []string
	for _, e := range entries {
		name := e.Name()
		dayText, ok := strings.CutSuffix(strings.TrimPrefix(name, prefix), suffix)
		if !ok || !strings.HasPrefix(name, prefix) {
			continue
		}
		day, err := time.Parse(dayLayout, dayText)
		if err != nil || !day.Add(24*time.Hour).Before(cutoff) {
			continue
		}
		if err := os.Remove(filepath.Join(dir, name)); err != nil {
			return removed, fmt.Errorf("remove old archive %s: %w", name, err)
		}
		removed = append(removed, name)
	}
	sort.Strings(removed)
	return removed, nil
}

// Read calls fn for every record of an archive file, with its line number.
// A line that does not decode is passed to fn as an error, and reading goes
// on, so one damaged line does not hide the rest.
func Read(path string, fn func(line int, r Record, err error) error) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("open archive: %w", err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return fmt.Errorf("read archive %s: %w", path, err)
	}
	defer zr.Close()

	scanner := bufio.NewScanner(zr)
	scanner.Buffer(make([]byte, 0, 64<<10), 1<<20)
	line := 0
	for scanner.Scan() {
		line++
		var r Record
		decodeErr := json.Unmarshal(scanner.Bytes(), &r)
		if decodeErr == nil && (r.Visit.VisitID == "" || r.Visit.ContentHash == "") {
			decodeErr = errors.New("record has no visitId or contentHash")
		}
		if err := fn(line, r, decodeErr); err != nil {
			return err
		}
	}
	if err := scanner.Err(); err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("read archive %s after line %d: %w", path, line, err)
	}
	if errors.Is(scanner.Err(), io.ErrUnexpectedEOF) {
		return fmt.Errorf("read archive %s: file ends early after line %d (a batch cut off by a crash); the lines before it were read", path, line)
	}
	return nil
}
