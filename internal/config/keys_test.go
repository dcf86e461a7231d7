package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

type testLink struct {
	CAFile string `yaml:"caFile"`
	Proxy  string `yaml:"proxy"`
}

type testConfig struct {
	Version int      `yaml:"version"`
	Link    testLink `yaml:"link"`
}

func TestLoadNamesAllowedKeys(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(path, []byte("version: 1\nverison: 2\nlink:\n  cafile: x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var cfg testConfig
	err := Load(path, &cfg)
	if err == nil {
		t.Fatal("Load accepted unknown keys")
	}
	for _, want := range []string{
		"field verison not found in type config.testConfig; allowed keys: link, version",
		"field cafile not found in type config.testLink; allowed keys: caFile, proxy",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
}
