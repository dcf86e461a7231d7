// Command visitrelay-appliance runs the on-prem appliance, which pulls
// visits from the cloud gateway and commits them to PostgreSQL, and holds the
// admin commands for the directory and the database.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/visitrelay/visitrelay/appliance"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := appliance.Run(ctx, os.Args[1:], appliance.IO{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr})
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "visitrelay-appliance:", err)
		os.Exit(1)
	}
}
