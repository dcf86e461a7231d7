package health

import (
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// Disk is the space of the filesystem that holds a directory.
type Disk struct {
	// AvailableBytes is the space an unprivileged process can still use.
	AvailableBytes uint64 `json:"availableBytes"`
	// TotalBytes is the size of the filesystem.
	TotalBytes uint64 `json:"totalBytes"`
}

// UsedPercent returns how full the filesystem is, counting the space
// reserved for root as used, as df does.
func (d Disk) UsedPercent() float64 {
	if d.TotalBytes == 0 {
		return 0
	}
	return 100 * float64(d.TotalBytes-min(d.AvailableBytes, d.TotalBytes)) / float64(d.TotalBytes)
}

// StatDisk returns the space of the filesystem that holds dir.
func StatDisk(dir string) (Disk, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return Disk{}, fmt.Errorf("stat filesystem of %s: %w", dir, err)
	}
	size := uint64(st.Bsize)
	return Disk{AvailableBytes: uint64(st.Bavail) * size, TotalBytes: uint64(st.Blocks) * size}, nil
}

// ProbeWritable writes, fsyncs and removes a small file in dir, which is
// what JetStream must be able to do to store a visit.
func ProbeWritable(dir string) error {
	f, err := os.CreateTemp(dir, ".write-probe-*")
	if err != nil {
		return fmt.Errorf("create probe file in %s: %w", dir, err)
	}
	name := f.Name()
	defer os.Remove(name)

	_, err = f.Write([]byte("ok\n"))
	if err == nil {
		err = f.Sync()
	}
	if closeErr := f.Close(); err == nil {
		err = closeErr
	}
	if err != nil {
		return fmt.Errorf("write probe file %s: %w", filepath.Base(name), err)
	}
	return nil
}
