// Package config loads the YAML config file of a visitrelay binary: unknown
// keys are rejected, and validation collects every problem at once, each
// with its key, the bad value and what is allowed.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Load decodes the YAML file at path into dst, which holds the defaults on
// entry. Keys that dst has no field for are errors, so that a misspelt key
// does not silently leave a default in force.
func Load(path string, dst any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read config file: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(dst); err != nil && !errors.Is(err, io.EOF) {
		// Unknown keys get the list of allowed keys (keys.go).
		return fmt.Errorf("parse config file %s: %w", path, explainUnknownKeys(err, dst))
	}
	return nil
}

// Problems collects validation problems of a config.
type Problems struct {
	list []string
}

// Add records a problem with a key.
func (p *Problems) Add(key string, value any, rule string) {
	p.list = append(p.list, fmt.Sprintf("%s: %v: %s", key, value, rule))
}

// Err returns all problems as one error, or nil.
func (p *Problems) Err() error {
	if len(p.list) == 0 {
		return nil
	}
	return fmt.Errorf("invalid config:\n  %s", strings.Join(p.list, "\n  "))
}

// Log holds the logging settings that both binaries share.
type Log struct {
	// Level is debug, info, warn or error. Default info.
	Level string `yaml:"level"`
	// Format is text or json. Default text.
	Format string `yaml:"format"`
}

// Validate checks the logging settings.
func (l Log) Validate(p *Problems) {
	switch l.Level {
	case "debug", "info", "warn", "error":
	default:
		p.Add("log.level", l.Level, "must be one of debug, info, warn, error")
	}
	switch l.Format {
	case "text", "json":
	default:
		p.Add("log.format", l.Format, "must be text or json")
	}
}

// NewLogger builds the process logger from the settings.
func (l Log) NewLogger(w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(l.Level))
	opts := &slog.HandlerOptions{Level: level}
	if l.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
