// Command visitrelay-load simulates salesmen posting a working day of visits
// through a gateway's HTTP API and checks that every accepted visit is
// stored once. Run it with -h for its flags.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/visitrelay/visitrelay/internal/load"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := load.Run(ctx, os.Args[1:], os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "visitrelay-load:", err)
		os.Exit(1)
	}
}
