// Command visitrelay-demo runs PostgreSQL, the appliance and the gateway on
// this machine and replays a working day of visits through them.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/visitrelay/visitrelay/internal/demo"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := demo.Run(ctx, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "visitrelay-demo:", err)
		os.Exit(1)
	}
}
