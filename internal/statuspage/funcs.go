package statuspage

import (
	"fmt"
	"html/template"
	"math"
	"strconv"
	"time"

	"github.com/visitrelay/visitrelay/internal/health"
)

// Funcs returns the template functions of the status pages. Each accepts
// the value or a pointer to it, and writes "–" for a nil pointer, which
// /status.json shows as null: not known.
func Funcs() template.FuncMap {
	return template.FuncMap{
		"clock":    clock,
		"ago":      ago,
		"age":      age,
		"bytes":    formatBytes,
		"count":    count,
		"percent":  percent,
		"days":     days,
		"rate":     rate,
		"duration": duration,
		"decimal":  decimal,
		"deref":    deref,
		"chart":    Chart,
	}
}

const unknown = "–"

func timeOf(v any) (time.Time, bool) {
	switch t := v.(type) {
	case time.Time:
		return t, !t.IsZero()
	case *time.Time:
		if t == nil || t.IsZero() {
			return time.Time{}, false
		}
		return *t, true
	}
	return time.Time{}, false
}

func floatOf(v any) (float64, bool) {
	switch n := v.(type) {
	case float64:
		return n, true
	case *float64:
		if n == nil {
			return 0, false
		}
		return *n, true
	case int:
		return float64(n), true
	case int64:
		return float64(n), true
	case uint64:
		return float64(n), true
	case *uint64:
		if n == nil {
			return 0, false
		}
		return float64(*n), true
	case *int64:
		if n == nil {
			return 0, false
		}
		return float64(*n), true
	}
	return 0, false
}

func clock(v any) string {
	t, ok := timeOf(v)
	if !ok {
		return unknown
	}
	return health.Clock(t)
}

// ago writes how long ago a time was, such as "4 min ago".
func ago(v any) string {
	t, ok := timeOf(v)
	if !ok {
		return unknown
	}
	d := Now().Sub(t)
	if d < 0 {
		return "in " + duration(-d.Seconds())
	}
	return duration(d.Seconds()) + " ago"
}

// age writes an age given in seconds.
func age(v any) string {
	s, ok := floatOf(v)
	if !ok {
		return unknown
	}
	return duration(s)
}

// duration writes seconds in the largest unit that keeps the number
// readable: "12 s", "4 min", "3 h 5 min", "2 d 4 h".
func duration(v any) string {
	s, ok := floatOf(v)
	if !ok {
		return unknown
	}
	d := time.Duration(s * float64(time.Second))
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%d s", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%d min", int(d.Minutes()))
	case d < 24*time.Hour:
		return fmt.Sprintf("%d h %d min", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%d d %d h", int(d.Hours())/24, int(d.Hours())%24)
}

func formatBytes(v any) string {
	n, ok := floatOf(v)
	if !ok {
		return unknown
	}
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	i := 0
	for n >= 1024 && i < len(units)-1 {
		n /= 1024
		i++
	}
	if i == 0 {
		return fmt.Sprintf("%d B", int64(n))
	}
	return fmt.Sprintf("%.1f %s", n, units[i])
}

// count writes a whole number with thin groups of three digits.
func count(v any) string {
	n, ok := floatOf(v)
	if !ok {
		return unknown
	}
	s := strconv.FormatInt(int64(n), 10)
	neg := s[0] == '-'
	if neg {
		s = s[1:]
	}
	out := ""
	for len(s) > 3 {
		out = "," + s[len(s)-3:] + out
		s = s[:len(s)-3]
	}
	if neg {
		s = "-" + s
	}
	return s + out
}

func percent(v any) string {
	n, ok := floatOf(v)
	if !ok {
		return unknown
	}
	return fmt.Sprintf("%.0f %%", n)
}

// days writes a runway in days; nil means nothing fills the store.
func days(v any) string {
	n, ok := floatOf(v)
	if !ok {
		return "no visits in the last 24 h"
	}
	if n > 999 || math.IsInf(n, 1) {
		return "over 999 days"
	}
	return fmt.Sprintf("%.1f days", n)
}

func rate(v any) string {
	n, ok := floatOf(v)
	if !ok {
		return unknown
	}
	return fmt.Sprintf("%.1f / min", n)
}

// decimal writes a number with one decimal place.
func decimal(v any) string {
	n, ok := floatOf(v)
	if !ok {
		return unknown
	}
	if math.Abs(n) < 0.05 {
		n = 0 // no "-0.0" for a tiny negative value
	}
	return fmt.Sprintf("%.1f", n)
}

// deref returns the number a pointer points to, or 0 for nil, for
// comparisons in a template.
func deref(v any) float64 {
	n, _ := floatOf(v)
	return n
}
