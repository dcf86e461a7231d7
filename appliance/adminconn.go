package appliance

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/nats-io/nats.go"
)

// clientURLFile is the file in the state directory where a running
// appliance writes its loopback NATS client URL, so that admin commands
// find the server without a fixed port.
const clientURLFile = "nats.url"

// ErrNotRunning means no running appliance was found for an admin command
// that needs one.
var ErrNotRunning = errors.New("appliance not running")

func writeClientURL(stateDir, url string) error {
	path := filepath.Join(stateDir, clientURLFile)
	if err := os.WriteFile(path, []byte(url+"\n"), 0o600); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// ConnectRunning connects to the NATS server of the appliance running with
// this state directory.
func ConnectRunning(stateDir string) (*nats.Conn, error) {
	path := filepath.Join(stateDir, clientURLFile)
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w: %w; start the appliance first", path, ErrNotRunning, err)
	}
	url := strings.TrimSpace(string(data))
	nc, err := nats.Connect(url, nats.Name("visitrelay-appliance admin"))
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w: %w; start the appliance first", url, ErrNotRunning, err)
	}
	return nc, nil
}
