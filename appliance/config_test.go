package appliance

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestExampleConfigLoads(t *testing.T) {
	cfg, err := LoadConfig("../configs/appliance.yaml")
	if err != nil {
		t.Fatalf("load example config: %v", err)
	}
	if cfg.NATS.Domain != "onprem" || cfg.Committer.BatchSize != 100 {
		t.Errorf("example config differs from the defaults: %+v", cfg)
	}
}

func TestConfigRejectsBadValues(t *testing.T) {
	tests := []struct {
		name    string
		content string
		want    []string
	}{
		{"unknown key", "version: 1\ndatabase:\n  uri: x\n", []string{"field uri not found"}},
		{"every problem at once",
			"version: 1\nnats:\n  domain: cloud\n  gatewayURLs: ['http://x:1']\ncommitter:\n  batchSize: 0\n  ackWait: 1s\n",
			[]string{"database.url", "nats.domain: cloud", "nats.gatewayURLs[0]: http://x:1", "committer.batchSize: 0", "committer.ackWait: 1s"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("VISITRELAY_DATABASE_URL", "")
			path := filepath.Join(t.TempDir(), "appliance.yaml")
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
