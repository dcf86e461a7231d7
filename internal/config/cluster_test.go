package config

import (
	"strings"
	"testing"
)

func TestClusterValidate(t *testing.T) {
	routes := []string{"nats-route://127.0.0.1:6222", "nats-route://127.0.0.1:6223", "nats-route://127.0.0.1:6224"}
	tests := []struct {
		name    string
		cluster Cluster
		want    []string // substrings of the problems, in order; none for a valid cluster
	}{
		{"single node", Cluster{}, nil},
		{"three nodes", Cluster{Name: "cloud", Listen: "127.0.0.1:6222", Routes: routes, Replicas: 3}, nil},
		{"routes without a name", Cluster{Routes: routes, Replicas: 3}, []string{"cluster.name: : must be set"}},
		{"replicas without a name", Cluster{Replicas: 3}, []string{"cluster.name: : must be set"}},
		{"more replicas than routes", Cluster{Name: "cloud", Routes: routes[:1], Replicas: 3},
			[]string{"cluster.replicas: 3: must not exceed the number of nodes listed in routes (1)"}},
		{"route without a scheme", Cluster{Name: "cloud", Routes: []string{"127.0.0.1:6222"}},
			[]string{"cluster.routes[0]: 127.0.0.1:6222: must be a URL such as nats-route://node1:6222"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p Problems
			tt.cluster.Validate(&p, "cluster")
			if len(p.list) != len(tt.want) {
				t.Fatalf("problems %q, want %d matching %q", p.list, len(tt.want), tt.want)
			}
			for i, want := range tt.want {
				if !strings.Contains(p.list[i], want) {
					t.Errorf("problem %d is %q, want it to contain %q", i, p.list[i], want)
				}
			}
		})
	}
}
