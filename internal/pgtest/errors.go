package pgtest

import "errors"

// ErrBinariesNotFound means no directory with the PostgreSQL server
// binaries (initdb, postgres) was found. The testing helpers skip on it,
// or fail under CI=true.
var ErrBinariesNotFound = errors.New("PostgreSQL server binaries not found")

// ErrExternalServer means the operation needs a cluster that pgtest started,
// but the cluster is the server named by TEST_DATABASE_URL.
var ErrExternalServer = errors.New("server from TEST_DATABASE_URL is not managed by pgtest")
