package load

import "errors"

// ErrCheckFailed is wrapped by Report.Check when a run that waited for its
// visits found one lost, duplicated, rejected or never acknowledged.
var ErrCheckFailed = errors.New("load check failed")
