package gateway

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestExampleConfigLoads(t *testing.T) {
	cfg, err := LoadConfig("../configs/gateway.yaml")
	if err != nil {
		t.Fatalf("load example config: %v", err)
	}
	if cfg.NATS.SiteDomain != "onprem" || cfg.Visits.MaxBytes != 1<<30 {
		t.Errorf("example config differs from the defaults: %+v", cfg)
	}
}

func TestConfigRejectsBadValues(t *testing.T) {
	tests := []struct {
		name    string
		content string
		want    []string
	}{
		{"unknown key", "version: 1\nlisten: ':8080'\nlisen: x\n", []string{"field lisen not found"}},
		{"every problem at once", "version: 2\nlisten: nonsense\nvisits:\n  retention: 1m\n  maxBytes: 10\nlog:\n  level: loud\n",
			[]string{"version: 2", "listen: nonsense", "visits.retention: 1m0s", "visits.maxBytes: 10", "log.level: loud"}},
		{"bad site domain", "version: 1\nnats:\n  siteDomain: 'a.b'\n", []string{"nats.siteDomain: a.b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "gateway.yaml")
			if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := LoadConfig(path)
			if err == nil {
				t.Fatal("LoadConfig accepted a bad config")
			}
			for _, want := range tt.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not mention %q", err, want)
				}
			}
		})
	}
}
