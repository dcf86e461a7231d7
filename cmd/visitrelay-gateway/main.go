// Command visitrelay-gateway runs the cloud gateway: the HTTP API for phones
// and the NATS hub that holds accepted visits until the appliance pulls them.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/visitrelay/visitrelay/gateway"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := gateway.Run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "visitrelay-gateway:", err)
		os.Exit(1)
	}
}
