package pgtest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// debianBinGlob matches the server binary directories of Debian's
// postgresql-NN packages.
const debianBinGlob = "/usr/lib/postgresql/*/bin"

// FindBinDir returns the directory holding initdb and postgres. It tries, in
// order, the PG_BINDIR environment variable, the output of `pg_config
// --bindir` when that directory has initdb, and the newest
// /usr/lib/postgresql/*/bin. When PG_BINDIR is set it is the only place
// looked at. The error wraps ErrBinariesNotFound.
func FindBinDir() (string, error) {
	if dir := os.Getenv("PG_BINDIR"); dir != "" {
		if !hasInitdb(dir) {
			return "", fmt.Errorf("find initdb in PG_BINDIR %q: %w", dir, ErrBinariesNotFound)
		}
		return dir, nil
	}

	if dir := pgConfigBinDir(); dir != "" && hasInitdb(dir) {
		return dir, nil
	}

	if dir := newestDebianBinDir(); dir != "" {
		return dir, nil
	}
	return "", fmt.Errorf("find initdb in PG_BINDIR, pg_config --bindir or %s: %w", debianBinGlob, ErrBinariesNotFound)
}

func hasInitdb(dir string) bool {
	info, err := os.Stat(filepath.Join(dir, "initdb"))
	return err == nil && !info.IsDir() && info.Mode()&0o111 != 0
}

// pgConfigBinDir returns the output of `pg_config --bindir`, or "" when
// pg_config is missing or fails. On Debian pg_config comes with the client
// package, so its directory may lack initdb.
func pgConfigBinDir() string {
	output, err := exec.Command("pg_config", "--bindir").Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(output))
}

// newestDebianBinDir returns the bin directory of the highest installed
// major version that has initdb, or "".
func newestDebianBinDir() string {
	dirs, err := filepath.Glob(debianBinGlob)
	if err != nil {
		return ""
	}
	sort.Slice(dirs, func(i, j int) bool {
		return majorVersion(dirs[i]) > majorVersion(dirs[j])
	})
	for _, dir := range dirs {
		if hasInitdb(dir) {
			return dir
		}
	}
	return ""
}

// majorVersion returns NN from /usr/lib/postgresql/NN/bin, or 0.
func majorVersion(binDir string) int {
	version, err := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	if err != nil {
		return 0
	}
	return version
}
