package config

import (
	"errors"
	"reflect"
	"regexp"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// unknownField matches the yaml decoder's message for a key that the
// config has no field for.
var unknownField = regexp.MustCompile(`field (\S+) not found in type (\S+)`)

// explainUnknownKeys adds the allowed keys to each "field not found"
// message of a yaml.TypeError, so that a misspelt key shows its fix. Other
// errors are returned as they are.
func explainUnknownKeys(err error, dst any) error {
	var typeErr *yaml.TypeError
	if !errors.As(err, &typeErr) {
		return err
	}
	types := structTypes(reflect.TypeOf(dst), map[string]reflect.Type{})
	lines := make([]string, len(typeErr.Errors))
	for i, msg := range typeErr.Errors {
		lines[i] = msg
		m := unknownField.FindStringSubmatch(msg)
		if m == nil {
			continue
		}
		if t, ok := types[m[2]]; ok {
			lines[i] = msg + "; allowed keys: " + strings.Join(yamlKeys(t), ", ")
		}
	}
	return &yaml.TypeError{Errors: lines}
}

// structTypes collects the struct types reachable from t, by the name the
// yaml decoder prints (package.Type).
func structTypes(t reflect.Type, seen map[string]reflect.Type) map[string]reflect.Type {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Map {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return seen
	}
	name := t.String()
	if _, ok := seen[name]; ok {
		return seen
	}
	seen[name] = t
	for i := range t.NumField() {
		structTypes(t.Field(i).Type, seen)
	}
	return seen
}

func yamlKeys(t reflect.Type) []string {
	var keys []string
	for i := range t.NumField() {
		tag, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		if tag != "" && tag != "-" {
			keys = append(keys, tag)
		}
	}
	sort.Strings(keys)
	return keys
}
