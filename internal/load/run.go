package load

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
)

// Run is the visitrelay-load command: it parses args, runs the load, writes
// logs and the report to stdout, and returns an error when the run could not
// start or Report.Check failed. The report's last line is the visits
// summary. -h prints the flags and returns nil.
func Run(ctx context.Context, args []string, stdout io.Writer) error {
	o, err := parseOptions(args, stdout)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	o.Logger = slog.New(slog.NewTextHandler(stdout, &slog.HandlerOptions{Level: slog.LevelInfo}))

	report, err := Execute(ctx, o)
	if report.Salesmen == 0 {
		return err
	}
	if writeErr := report.Write(stdout); writeErr != nil {
		err = errors.Join(err, fmt.Errorf("write report: %w", writeErr))
	}
	return errors.Join(err, report.Check())
}

// parseOptions reads the command's flags into Options and validates them.
// On -h it prints the flags to usage and returns flag.ErrHelp.
func parseOptions(args []string, usage io.Writer) (Options, error) {
	var o Options
	flags := flag.NewFlagSet("visitrelay-load", flag.ContinueOnError)
	flags.SetOutput(io.Discard)
	flags.StringVar(&o.GatewayURL, "gateway", defaultGatewayURL, "base `URL` of the gateway")
	flags.StringVar(&o.UsersFile, "users", defaultUsersFile, "users CSV `file` with the header id,username,name,password, whose first -salesmen rows log in")
	flags.IntVar(&o.Salesmen, "salesmen", defaultSalesmen, "number of salesmen posting at the same time")
	flags.IntVar(&o.Visits, "visits", defaultVisits, "visits each salesman posts")
	flags.Float64Var(&o.Rate, "rate", 0, "new visits per second across all salesmen, or 0 to post as fast as possible")
	flags.Float64Var(&o.DuplicateRate, "duplicate-rate", 0, "`fraction` of accepted visits posted a second time over a fresh connection, 0 to 1")
	flags.DurationVar(&o.WaitStored, "wait-stored", defaultWaitStored, "how long to poll until every accepted visit reads stored, or 0 to skip the wait and the stored, lost and duplicate checks")
	flags.DurationVar(&o.RequestTimeout, "timeout", defaultRequestTimeout, "timeout of each HTTP request")
	flags.BoolVar(&o.Insecure, "insecure", false, "skip TLS certificate verification, for a lab gateway with a self-signed certificate")
	flags.Int64Var(&o.Seed, "seed", 0, "seed of the visit generator, or 0 to pick one from the clock")

	if err := flags.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			flags.SetOutput(usage)
			fmt.Fprintln(usage, "Usage: visitrelay-load [flags]")
			flags.PrintDefaults()
		}
		return Options{}, fmt.Errorf("parse flags: %w", err)
	}
	if flags.NArg() > 0 {
		return Options{}, fmt.Errorf("parse flags: unexpected argument %q", flags.Arg(0))
	}
	// Only the fields without a flag get their defaults here, so that
	// validate rejects a flag set to 0 instead of replacing it by a default.
	o.PollInterval, o.MaxAttempts = defaultPollInterval, defaultMaxAttempts
	o.RetryBase, o.RetryMax = defaultRetryBase, defaultRetryMax
	if err := o.validate(); err != nil {
		return Options{}, err
	}
	return o, nil
}
