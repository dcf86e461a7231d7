package config

import (
	"fmt"
	"net"
	"net/url"
	"strconv"

	"github.com/visitrelay/visitrelay/internal/natsembed"
)

// Cluster joins several nodes of one side into a NATS cluster. It is
// optional: without a name the binary runs as a single node.
type Cluster struct {
	// Name is the cluster name, the same on every node. Empty runs a single
	// node. Default empty.
	Name string `yaml:"name"`
	// Listen is the route listener, HOST:PORT. Default 0.0.0.0:6222.
	Listen string `yaml:"listen"`
	// Routes are the route URLs of all nodes, this one's included, such as
	// nats-route://node1.example.com:6222.
	Routes []string `yaml:"routes"`
	// Replicas is how many nodes keep a copy of each stream. Default 3 in a
	// cluster, 1 for a single node.
	Replicas int `yaml:"replicas"`
}

// Enabled reports whether the node runs in a cluster.
func (c Cluster) Enabled() bool { return c.Name != "" }

// StreamReplicas returns the replica count for streams.
func (c Cluster) StreamReplicas() int {
	switch {
	case !c.Enabled():
		return 1
	case c.Replicas == 0:
		return 3
	}
	return c.Replicas
}

// Validate checks the cluster settings under the key prefix.
func (c Cluster) Validate(p *Problems, prefix string) {
	if !c.Enabled() {
		// Without a name the node runs alone, so routes or replicas point
		// to a forgotten name rather than a single-node setup.
		if len(c.Routes) > 0 || c.Replicas > 1 {
			p.Add(prefix+".name", "", "must be set, the same on every node, when routes or replicas are set; remove the cluster section to run one node")
		}
		return
	}
	if _, _, err := c.listenAddress(); err != nil {
		p.Add(prefix+".listen", c.Listen, "must be HOST:PORT, such as 0.0.0.0:6222")
	}
	if len(c.Routes) == 0 {
		p.Add(prefix+".routes", "[]", "must list the route URL of every node, such as nats-route://node1:6222")
	}
	for i, r := range c.Routes {
		if u, err := url.Parse(r); err != nil || u.Host == "" || (u.Scheme != "nats-route" && u.Scheme != "nats") {
			p.Add(fmt.Sprintf("%s.routes[%d]", prefix, i), r, "must be a URL such as nats-route://node1:6222")
		}
	}
	if c.Replicas < 0 || c.Replicas > 5 {
		p.Add(prefix+".replicas", c.Replicas, "must be from 1 to 5")
	}
	if c.Replicas > len(c.Routes) && len(c.Routes) > 0 {
		p.Add(prefix+".replicas", c.Replicas, fmt.Sprintf("must not exceed the number of nodes listed in routes (%d)", len(c.Routes)))
	}
}

func (c Cluster) listenAddress() (string, int, error) {
	listen := c.Listen
	if listen == "" {
		listen = "0.0.0.0:6222"
	}
	host, portText, err := net.SplitHostPort(listen)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(portText)
	if err != nil {
		return "", 0, err
	}
	if port == 0 {
		port = -1
	}
	return host, port, nil
}

// NATSOptions returns the embedded server's cluster options for a
// validated config, or nil for a single node.
func (c Cluster) NATSOptions() *natsembed.ClusterOptions {
	if !c.Enabled() {
		return nil
	}
	host, port, _ := c.listenAddress()
	opts := &natsembed.ClusterOptions{Name: c.Name, Host: host, Port: port}
	for _, r := range c.Routes {
		if u, err := url.Parse(r); err == nil {
			opts.Routes = append(opts.Routes, u)
		}
	}
	return opts
}
