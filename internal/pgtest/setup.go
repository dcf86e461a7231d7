package pgtest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// serverOwner returns the credential of the postgres OS user when this
// process is root, because initdb and postgres exit with an error when run
// as root. It returns nil otherwise, and the server runs as the current user.
func serverOwner() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	account, err := user.Lookup(superuser)
	if err != nil {
		return nil, fmt.Errorf("look up OS user %q to run initdb as instead of root: %w", superuser, err)
	}
	uid, err := strconv.ParseUint(account.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("parse uid %q of OS user %q: %w", account.Uid, superuser, err)
	}
	gid, err := strconv.ParseUint(account.Gid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("parse gid %q of OS user %q: %w", account.Gid, superuser, err)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// prepareDir creates the cluster and socket directories and, when running
// as root, hands them to the postgres OS user.
func (c *Cluster) prepareDir() error {
	for _, dir := range []string{c.dir, c.socketDir()} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("create directory %q: %w", dir, err)
		}
		if c.owner == nil {
			continue
		}
		if err := os.Chown(dir, int(c.owner.Uid), int(c.owner.Gid)); err != nil {
			return fmt.Errorf("hand directory %q to OS user %q: %w", dir, superuser, err)
		}
	}
	if c.owner == nil {
		return nil
	}
	return checkSearchable(filepath.Dir(c.dir), c.owner)
}

// checkSearchable returns an error naming the first parent of dir that the
// owner cannot enter. It reads only the permission bits and the primary
// group, so a directory open to a supplementary group is reported too.
func checkSearchable(dir string, owner *syscall.Credential) error {
	for {
		info, err := os.Stat(dir)
		if err != nil {
			return fmt.Errorf("check directory %q: %w", dir, err)
		}
		stat, ok := info.Sys().(*syscall.Stat_t)
		mode := info.Mode().Perm()
		searchable := mode&0o001 != 0 ||
			(ok && stat.Uid == owner.Uid && mode&0o100 != 0) ||
			(ok && stat.Gid == owner.Gid && mode&0o010 != 0)
		if !searchable {
			return fmt.Errorf("check directory %q: OS user %q cannot enter it, so choose a cluster directory under %s", dir, superuser, os.TempDir())
		}

		parent := filepath.Dir(dir)
		if parent == dir {
			return nil
		}
		dir = parent
	}
}

// initdb creates the cluster in the data directory unless one is there. It
// tries the C.UTF-8 locale first and falls back to C where the OS lacks it.
// Messages stay in English so that errors from the server log read the
// same everywhere.
func (c *Cluster) initdb(ctx context.Context) error {
	if _, err := os.Stat(filepath.Join(c.dataDir(), "PG_VERSION")); err == nil {
		c.logger.Info("postgres data directory found, skipping initdb", "data_dir", c.dataDir())
		return nil
	}

	var output []byte
	var err error
	for _, locale := range []string{"C.UTF-8", "C"} {
		args := []string{
			"--pgdata", c.dataDir(),
			"--username", superuser,
			"--auth", "trust",
			"--encoding", "UTF8",
			"--locale", locale,
			"--lc-messages", "C",
		}
		if !c.fsync {
			args = append(args, "--no-sync")
		}
		output, err = c.command(ctx, "initdb", args...).CombinedOutput()
		if err == nil {
			c.logger.Info("postgres cluster created", "data_dir", c.dataDir(), "locale", locale)
			return nil
		}
		if !strings.Contains(string(output), "invalid locale") {
			break
		}
	}
	return fmt.Errorf("run initdb in %q: %w; output:\n%s", c.dataDir(), err, output)
}

// command returns a command that runs a PostgreSQL binary as the cluster's
// OS user, in the cluster directory because root's working directory may
// be closed to that user.
func (c *Cluster) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, filepath.Join(c.binDir, name), args...)
	cmd.Dir = c.dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.owner}
	return cmd
}
