package load

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"strings"
	"testing"
	"time"
)

func TestParseOptionsErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"unknown flag", []string{"-salesman", "3"}, []string{"flag provided but not defined: -salesman"}},
		{"positional argument", []string{"extra"}, []string{`unexpected argument "extra"`}},
		{"zero salesmen", []string{"-salesmen", "0"}, []string{"invalid -salesmen 0"}},
		{"negative visits", []string{"-visits", "-1"}, []string{"invalid -visits -1"}},
		{"negative rate", []string{"-rate", "-0.5"}, []string{"invalid -rate -0.5"}},
		{"infinite rate", []string{"-rate", "+Inf"}, []string{"invalid -rate +Inf"}},
		{"duplicate rate above one", []string{"-duplicate-rate", "1.5"}, []string{"invalid -duplicate-rate 1.5"}},
		{"negative wait", []string{"-wait-stored", "-1s"}, []string{"invalid -wait-stored -1s"}},
		{"zero timeout", []string{"-timeout", "0"}, []string{"invalid -timeout 0s"}},
		{"gateway without scheme", []string{"-gateway", "127.0.0.1:8080"}, []string{"invalid -gateway"}},
		{"gateway with ftp scheme", []string{"-gateway", "ftp://127.0.0.1"}, []string{`invalid -gateway "ftp://127.0.0.1"`}},
		{"empty users file", []string{"-users", ""}, []string{"missing -users"}},
		{
			"every problem at once",
			[]string{"-salesmen", "0", "-visits", "0", "-duplicate-rate", "-1"},
			[]string{"invalid -salesmen 0", "invalid -visits 0", "invalid -duplicate-rate -1"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseOptions(tt.args, &bytes.Buffer{})
			if err == nil {
				t.Fatalf("parseOptions(%q) returned no error", tt.args)
			}
			for _, want := range tt.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("parseOptions(%q) error = %q, want it to contain %q", tt.args, err, want)
				}
			}
		})
	}
}

func TestParseOptionsDefaults(t *testing.T) {
	o, err := parseOptions(nil, &bytes.Buffer{})
	if err != nil {
		t.Fatalf("parseOptions(nil): %v", err)
	}
	if o.GatewayURL != defaultGatewayURL {
		t.Errorf("GatewayURL = %q, want %q", o.GatewayURL, defaultGatewayURL)
	}
	if o.Salesmen != 35 || o.Visits != 20 {
		t.Errorf("Salesmen, Visits = %d, %d, want 35, 20", o.Salesmen, o.Visits)
	}
	if o.WaitStored != 2*time.Minute {
		t.Errorf("WaitStored = %s, want 2m", o.WaitStored)
	}
	if o.MaxAttempts != defaultMaxAttempts {
		t.Errorf("MaxAttempts = %d, want %d", o.MaxAttempts, defaultMaxAttempts)
	}
}

func TestParseOptionsHelp(t *testing.T) {
	var usage bytes.Buffer
	_, err := parseOptions([]string{"-h"}, &usage)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("parseOptions(-h) error = %v, want flag.ErrHelp", err)
	}
	if !strings.Contains(usage.String(), "-duplicate-rate") {
		t.Errorf("usage does not list -duplicate-rate:\n%s", usage.String())
	}
}

func TestExecuteRejectsShortUsersFile(t *testing.T) {
	o := Options{UsersFile: "../../configs/demo/users.csv", Salesmen: 36}
	_, err := Execute(context.Background(), o)
	if err == nil || !strings.Contains(err.Error(), "36 salesmen requested, but the file has 35") {
		t.Fatalf("Execute error = %v, want one about too few users", err)
	}
}
