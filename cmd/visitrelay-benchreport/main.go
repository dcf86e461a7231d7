// Command visitrelay-benchreport turns the output of the end-to-end
// benchmarks into a markdown table with the date, the commit and the
// machine, prints it, and appends it to docs/benchmarks.md with -append.
// `make bench` runs it. Run it with -h for its flags.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/visitrelay/visitrelay/internal/benchreport"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := benchreport.Run(ctx, os.Args[1:], os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "visitrelay-benchreport:", err)
		os.Exit(1)
	}
}
