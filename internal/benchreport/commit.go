package benchreport

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
)

// Commit describes the source tree that the benchmarks ran.
type Commit struct {
	Describe string   // git describe --tags --always --dirty
	Hash     string   // full hash of HEAD
	Changed  []string // paths that git status lists as changed or untracked
}

// ReadCommit reads the commit and the changes of the git work tree that
// contains dir.
func ReadCommit(ctx context.Context, dir string) (Commit, error) {
	var c Commit
	var err error
	if c.Describe, err = git(ctx, dir, "describe", "--tags", "--always", "--dirty"); err != nil {
		return Commit{}, err
	}
	if c.Hash, err = git(ctx, dir, "rev-parse", "HEAD"); err != nil {
		return Commit{}, err
	}
	c.Describe, c.Hash = strings.TrimSpace(c.Describe), strings.TrimSpace(c.Hash)
	status, err := git(ctx, dir, "status", "--porcelain")
	if err != nil {
		return Commit{}, err
	}
	for line := range strings.Lines(status) {
		// Each line is two status letters, a space and the path.
		if len(line) > 3 {
			c.Changed = append(c.Changed, strings.TrimSpace(line[3:]))
		}
	}
	return c, nil
}

func git(ctx context.Context, dir string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = dir
	output, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("git %s in %s: %w", strings.Join(args, " "), dir, err)
	}
	return string(output), nil
}
