package visit

import (
	"fmt"
	"strings"
)

// FieldError names one field of a posted visit and the rule it broke.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// Errors lists every rule a posted visit broke. It is returned as one error
// so that the phone can show all problems at once instead of one per retry.
type Errors []FieldError

func (e Errors) Error() string {
	parts := make([]string, len(e))
	for i, fe := range e {
		parts[i] = fmt.Sprintf("%s: %s", fe.Field, fe.Message)
	}
	return "invalid visit: " + strings.Join(parts, "; ")
}

func (e *Errors) add(field, format string, args ...any) {
	*e = append(*e, FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
}

// Has reports whether a field already has an error, so later rules do not
// pile a second message onto a value that is already known to be wrong.
func (e Errors) Has(field string) bool {
	for _, fe := range e {
		if fe.Field == field {
			return true
		}
	}
	return false
}
