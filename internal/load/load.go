// Package load simulates salesmen posting a working day of visits through
// the gateway's HTTP API, then checks that every accepted visit reaches the
// on-prem database once.
package load

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// Defaults of Options and of the command's flags.
const (
	defaultGatewayURL     = "http://127.0.0.1:8080"
	defaultUsersFile      = "configs/demo/users.csv"
	defaultSalesmen       = 35
	defaultVisits         = 20
	defaultWaitStored     = 2 * time.Minute
	defaultPollInterval   = time.Second
	defaultRequestTimeout = 10 * time.Second
	defaultMaxAttempts    = 20
	defaultRetryBase      = 250 * time.Millisecond
	defaultRetryMax       = 10 * time.Second
)

// Options configures one load run. A zero numeric field takes its default,
// except Rate, DuplicateRate, WaitStored and Seed, where zero has a meaning.
type Options struct {
	// GatewayURL is the gateway's base URL. Default http://127.0.0.1:8080.
	GatewayURL string
	// UsersFile is the path of a users CSV with the header
	// id,username,name,password. The first Salesmen rows log in.
	UsersFile string
	// Salesmen is the number of salesmen posting at the same time. Default 35.
	Salesmen int
	// Visits is the number of visits each salesman posts. Default 20.
	Visits int
	// Rate limits new visits to this many per second across all salesmen.
	// Retries and resends are not paced. 0 posts as fast as possible.
	Rate float64
	// DuplicateRate is the fraction, 0 to 1, of accepted visits that are
	// posted a second time over a fresh connection. Default 0.
	DuplicateRate float64
	// WaitStored is how long each salesman, after its last post, keeps
	// polling its visit list until every visit it got accepted reads stored.
	// When set, polling also runs during the posts, to measure post-to-stored
	// latency. 0 skips polling and with it the stored, lost and duplicate
	// counts.
	WaitStored time.Duration
	// PollInterval is the pause between two polls of the visit list.
	// Default 1 s.
	PollInterval time.Duration
	// RequestTimeout bounds each HTTP request. Default 10 s.
	RequestTimeout time.Duration
	// MaxAttempts bounds the attempts of one request that keeps failing with
	// a 5xx, a 429 or a network error. Default 20.
	MaxAttempts int
	// RetryBase is the backoff ceiling after the first failed attempt. The
	// ceiling doubles per attempt up to RetryMax. Default 250 ms.
	RetryBase time.Duration
	// RetryMax caps the backoff between attempts. A Retry-After header may
	// ask for more, up to two minutes. Default 10 s.
	RetryMax time.Duration
	// Insecure skips TLS certificate verification, for lab gateways with
	// self-signed certificates. It applies only when HTTPClient is nil.
	Insecure bool
	// Seed seeds the visit generator and the retry jitter. 0 picks a seed
	// from the clock. The report shows the seed used.
	Seed int64
	// Logger receives progress and problems. Nil discards them.
	Logger *slog.Logger
	// HTTPClient sends every request. Nil builds a client that keeps one
	// connection per salesman.
	HTTPClient *http.Client
}

func (o Options) withDefaults() Options {
	if o.GatewayURL == "" {
		o.GatewayURL = defaultGatewayURL
	}
	o.Salesmen = defaultIfZero(o.Salesmen, defaultSalesmen)
	o.Visits = defaultIfZero(o.Visits, defaultVisits)
	o.PollInterval = defaultIfZero(o.PollInterval, defaultPollInterval)
	o.RequestTimeout = defaultIfZero(o.RequestTimeout, defaultRequestTimeout)
	o.MaxAttempts = defaultIfZero(o.MaxAttempts, defaultMaxAttempts)
	o.RetryBase = defaultIfZero(o.RetryBase, defaultRetryBase)
	o.RetryMax = defaultIfZero(o.RetryMax, defaultRetryMax)
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

func defaultIfZero[T int | time.Duration](value, fallback T) T {
	if value == 0 {
		return fallback
	}
	return value
}

// validate returns every invalid option at once, named by its flag.
func (o Options) validate() error {
	var errs []error
	if err := validateGatewayURL(o.GatewayURL); err != nil {
		errs = append(errs, err)
	}
	if o.UsersFile == "" {
		errs = append(errs, errors.New("missing -users: give the path of a users CSV"))
	}
	errs = appendIf(errs, o.Salesmen < 1, "invalid -salesmen %d: must be at least 1", o.Salesmen)
	errs = appendIf(errs, o.Visits < 1, "invalid -visits %d: must be at least 1", o.Visits)
	errs = appendIf(errs, !(o.Rate >= 0) || math.IsInf(o.Rate, 1), "invalid -rate %g: must be 0 or a positive number of visits per second", o.Rate)
	errs = appendIf(errs, !(o.DuplicateRate >= 0 && o.DuplicateRate <= 1), "invalid -duplicate-rate %g: must be between 0 and 1", o.DuplicateRate)
	errs = appendIf(errs, o.WaitStored < 0, "invalid -wait-stored %s: must be 0 or positive", o.WaitStored)
	errs = appendIf(errs, o.RequestTimeout <= 0, "invalid -timeout %s: must be positive", o.RequestTimeout)
	errs = appendIf(errs, o.PollInterval <= 0, "invalid poll interval %s: must be positive", o.PollInterval)
	errs = appendIf(errs, o.MaxAttempts < 1, "invalid max attempts %d: must be at least 1", o.MaxAttempts)
	errs = appendIf(errs, o.RetryBase <= 0, "invalid retry base %s: must be positive", o.RetryBase)
	errs = appendIf(errs, o.RetryMax < o.RetryBase, "invalid retry max %s: must be at least the retry base %s", o.RetryMax, o.RetryBase)
	return errors.Join(errs...)
}

func appendIf(errs []error, failed bool, format string, args ...any) []error {
	if !failed {
		return errs
	}
	return append(errs, fmt.Errorf(format, args...))
}

func validateGatewayURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("invalid -gateway %q: %w", raw, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("invalid -gateway %q: must be an http or https URL such as %s", raw, defaultGatewayURL)
	}
	return nil
}

// Execute runs the load described by o and returns what it measured. The
// error joins the errors of salesmen that could not start or renew their
// login, and an interruption by ctx. The report then covers the rest.
// Execute does not judge the counts, because Report.Check does.
func Execute(ctx context.Context, o Options) (Report, error) {
	o = o.withDefaults()
	if err := o.validate(); err != nil {
		return Report{}, err
	}
	accounts, err := readUsersFile(o.UsersFile)
	if err != nil {
		return Report{}, err
	}
	if len(accounts) < o.Salesmen {
		return Report{}, fmt.Errorf("read users %q: %d salesmen requested, but the file has %d: lower -salesmen or add rows", o.UsersFile, o.Salesmen, len(accounts))
	}
	if o.Seed == 0 {
		o.Seed = time.Now().UnixNano()
	}

	r := newRunner(o)
	o.Logger.Info("load started", "gateway", o.GatewayURL, "salesmen", o.Salesmen, "visits", o.Visits, "rate", o.Rate, "seed", o.Seed)
	start := time.Now()
	results := make([]salesmanResult, o.Salesmen)
	errs := make([]error, o.Salesmen)
	var wg sync.WaitGroup
	for i := range o.Salesmen {
		wg.Go(func() { results[i], errs[i] = r.runSalesman(ctx, i, accounts[i]) })
	}
	wg.Wait()

	report := newReport(o, results, time.Since(start))
	o.Logger.Info("load finished", "sent", report.Sent, "accepted", report.Accepted, "stored", report.Stored, "elapsed", report.Elapsed)
	if ctx.Err() != nil {
		errs = append(errs, fmt.Errorf("load interrupted: %w", context.Cause(ctx)))
	}
	return report, errors.Join(errs...)
}
