// Package e2e holds end-to-end tests: a real gateway and a real appliance,
// linked over a loopback leafnode, committing into a real PostgreSQL.
package e2e

import (
	"testing"

	"github.com/visitrelay/visitrelay/internal/pgtest"
)

func TestMain(m *testing.M) {
	pgtest.Main(m)
}
