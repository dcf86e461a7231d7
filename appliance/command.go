package appliance

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/visitrelay/visitrelay/internal/config"
)

// DefaultConfigPath is the config file path of the packaged appliance.
const DefaultConfigPath = "/etc/visitrelay/appliance.yaml"

const usage = `usage: visitrelay-appliance COMMAND [-config FILE] [ARGS]

commands:
  run                                  run the appliance (the default)
  check-config                         validate the config file and test the database and the link
  db init [-apply]                     print (or run) the SQL of the owner and runtime roles
  db migrate                           apply pending database migrations
  leaf-keygen FILE                     write a new nkey seed for the link and print its public key
  import clients|devices|users FILE    import a CSV file; a bad row rejects the file
  user add USERNAME -id ID -name NAME  add a salesman; password from -password-file or stdin
  user passwd USERNAME                 set a new password; old tokens stop working
  user disable|enable USERNAME         disable or enable a salesman
  replay-archive FILE...               commit the visits of gateway archive files; stored ones are skipped
  deadletters list                     list visits the database rejected
  deadletters show VISIT_ID            show one dead letter with its visit
  deadletters replay VISIT_ID|-all     commit dead letters again, once the cause is fixed
  deadletters discard VISIT_ID -reason TEXT
                                       drop a dead letter, recorded in discarded_visits
  trace [-json] VISIT_ID               show where a visit is: cloud, on-prem, database or dead letters`

// IO is the standard input and outputs of a command.
type IO struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
}

// Run is the visitrelay-appliance command line.
func Run(ctx context.Context, args []string, stdio IO) error {
	command, args := splitCommand(args)

	fs := flag.NewFlagSet("visitrelay-appliance "+command, flag.ContinueOnError)
	fs.SetOutput(stdio.Stderr)
	fs.Usage = func() { fmt.Fprintln(stdio.Stderr, usage) }
	configPath := fs.String("config", DefaultConfigPath, "path of the YAML config file")
	id := fs.String("id", "", "user id (user add)")
	name := fs.String("name", "", "full name (user add)")
	passwordFile := fs.String("password-file", "", "file whose first line is the password (user add, user passwd)")
	all := fs.Bool("all", false, "replay every dead letter (deadletters replay)")
	reason := fs.String("reason", "", "why a dead letter is discarded (deadletters discard)")
	asJSON := fs.Bool("json", false, "print the trace as JSON (trace)")
	dbInit := addDBInitFlags(fs) // dbinit_command.go
	positional, err := parseInterleaved(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		return nil // the usage is printed; asking for it is no failure
	}
	if err != nil {
		return err
	}
	// leaf-keygen runs before the config loads: the config names the seed
	// file that it creates (leaflink.go).
	if command == "leaf-keygen" {
		if len(positional) != 1 {
			return fmt.Errorf("leaf-keygen: name the seed file to create, such as /etc/visitrelay/leaf.nk\n%s", usage)
		}
		public, err := writeLeafKey(positional[0])
		if err != nil {
			return err
		}
		fmt.Fprintf(stdio.Stdout, "%s\n", public)
		fmt.Fprintf(stdio.Stderr, "seed written to %s; list the public key above under the site in the gateway's nats.sites\n", positional[0])
		return nil
	}
	cfg, err := LoadConfig(*configPath)
	if err != nil {
		return err
	}

	switch command {
	case "run":
		return serve(ctx, cfg, stdio.Stderr)
	case "check-config":
		return checkConfig(ctx, cfg, *configPath, stdio.Stdout) // checkconfig.go
	case "db init":
		return runDBInit(ctx, cfg, dbInit, stdio)
	}
	if command == "trace" {
		return withPool(ctx, cfg, func(pool *pgxpool.Pool) error {
			return runTrace(ctx, cfg, pool, positional, *asJSON, stdio.Stdout)
		})
	}
	if strings.HasPrefix(command, "deadletters") {
		return withPool(ctx, cfg, func(pool *pgxpool.Pool) error {
			return runDeadLetters(ctx, cfg, pool, command, positional, *all, *reason, stdio.Stdout)
		})
	}
	return withPool(ctx, cfg, func(pool *pgxpool.Pool) error {
		return runAdmin(ctx, pool, command, positional, adminFlags{id: *id, name: *name, passwordFile: *passwordFile}, stdio)
	})
}

// groups are the commands that take a second word, such as "user add".
var groups = map[string]bool{"db": true, "import": true, "user": true, "deadletters": true}

// splitCommand takes the command words off the front of args: one word, or
// two for a group.
func splitCommand(args []string) (string, []string) {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		return "run", args
	}
	if groups[args[0]] && len(args) > 1 && !strings.HasPrefix(args[1], "-") {
		return args[0] + " " + args[1], args[2:]
	}
	return args[0], args[1:]
}

type adminFlags struct {
	id, name, passwordFile string
}

func runAdmin(ctx context.Context, pool *pgxpool.Pool, command string, rest []string, flags adminFlags, stdio IO) error {
	if command == "db migrate" {
		return Migrate(ctx, pool, config.Log{Level: "info", Format: "text"}.NewLogger(stdio.Stderr))
	}
	if command == "replay-archive" {
		if len(rest) == 0 {
			return fmt.Errorf("replay-archive: name at least one archive file\n%s", usage)
		}
		result, err := ReplayArchive(ctx, pool, rest)
		writeArchiveReplay(stdio.Stdout, result)
		return err
	}
	if len(rest) != 1 {
		return fmt.Errorf("%s: expected one argument, got %d\n%s", command, len(rest), usage)
	}
	arg := rest[0]

	switch command {
	case "import clients", "import devices", "import users":
		importers := map[string]func(context.Context, *pgxpool.Pool, string) (int, error){
			"import clients": ImportClients, "import devices": ImportDevices, "import users": ImportUsers,
		}
		n, err := importers[command](ctx, pool, arg)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdio.Stdout, "imported %d rows from %s\n", n, arg)
		return nil
	case "user add":
		if flags.id == "" || flags.name == "" {
			return errors.New("user add: -id and -name are required")
		}
		password, err := readPassword(flags.passwordFile, stdio.Stdin)
		if err != nil {
			return err
		}
		if err := AddUser(ctx, pool, flags.id, arg, flags.name, password); err != nil {
			return err
		}
		fmt.Fprintf(stdio.Stdout, "user %s added with id %s\n", arg, flags.id)
		return nil
	case "user passwd":
		password, err := readPassword(flags.passwordFile, stdio.Stdin)
		if err != nil {
			return err
		}
		if err := SetPassword(ctx, pool, arg, password); err != nil {
			return err
		}
		fmt.Fprintf(stdio.Stdout, "password of %s changed; tokens issued before stop working\n", arg)
		return nil
	case "user disable", "user enable":
		if err := SetDisabled(ctx, pool, arg, command == "user disable"); err != nil {
			return err
		}
		fmt.Fprintf(stdio.Stdout, "user %s %sd\n", arg, strings.TrimPrefix(command, "user "))
		return nil
	}
	return fmt.Errorf("unknown command %q\n%s", command, usage)
}

// readPassword takes the first line of the file, or of stdin, so that a
// password never appears on a command line.
func readPassword(path string, stdin io.Reader) (string, error) {
	r := stdin
	if path != "" {
		f, err := os.Open(path)
		if err != nil {
			return "", fmt.Errorf("open password file: %w", err)
		}
		defer f.Close()
		r = f
	}
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read password: %w", err)
	}
	return strings.TrimRight(line, "\r\n"), nil
}

func withPool(ctx context.Context, cfg Config, fn func(*pgxpool.Pool) error) error {
	dsn, err := cfg.Database.databaseURL()
	if err != nil {
		return err
	}
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		return fmt.Errorf("connect to database: %w", err)
	}
	defer pool.Close()
	return fn(pool)
}

// LoadConfig reads and validates an appliance config file.
// VISITRELAY_DATABASE_URL and VISITRELAY_STATE_DIR override the file.
func LoadConfig(path string) (Config, error) {
	cfg := DefaultConfig()
	if err := config.Load(path, &cfg); err != nil {
		return cfg, err
	}
	if v := os.Getenv("VISITRELAY_DATABASE_URL"); v != "" {
		cfg.Database.URL = v
	}
	if v := os.Getenv("VISITRELAY_STATE_DIR"); v != "" {
		cfg.StateDir = v
	}
	if err := cfg.Validate(); err != nil {
		return cfg, fmt.Errorf("config %s: %w", path, err)
	}
	return cfg, nil
}

func serve(ctx context.Context, cfg Config, logOutput io.Writer) error {
	logger := cfg.Log.NewLogger(logOutput)
	a := New(cfg, logger)
	startCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := a.Start(startCtx); err != nil {
		return fmt.Errorf("start appliance: %w", err)
	}
	// READY=1 once the database answers, and watchdog pings (systemd.go).
	go a.notifySystemd(ctx)
	<-ctx.Done()
	a.notifyStopping()
	stopCtx, stop := context.WithTimeout(context.Background(), 30*time.Second)
	defer stop()
	return a.Shutdown(stopCtx)
}

func runDeadLetters(ctx context.Context, cfg Config, pool *pgxpool.Pool, command string, rest []string, all bool, reason string, stdout io.Writer) error {
	nc, err := ConnectRunning(cfg.StateDir)
	if err != nil {
		return err
	}
	defer nc.Close()
	dls, err := NewDeadLetters(ctx, nc, pool)
	if err != nil {
		return err
	}

	if command == "deadletters list" {
		list, err := dls.List(ctx)
		if err != nil {
			return err
		}
		return writeDeadLetters(stdout, list)
	}
	if command == "deadletters replay" && all {
		return replayAll(ctx, dls, stdout)
	}
	if len(rest) != 1 {
		return fmt.Errorf("%s: expected one VISIT_ID, got %d\n%s", command, len(rest), usage)
	}
	id := rest[0]

	switch command {
	case "deadletters show":
		dl, err := dls.Get(ctx, id)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "visit %s\nreason: %s\nattempts: %d\nsince: %s\n%s\n",
			dl.VisitID, dl.Reason, dl.Attempts, dl.Time.UTC().Format(time.RFC3339), dl.Raw)
		return nil
	case "deadletters replay":
		if err := dls.Replay(ctx, id); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "visit %s stored\n", id)
		return nil
	case "deadletters discard":
		if err := dls.Discard(ctx, id, reason); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "visit %s discarded and recorded in discarded_visits\n", id)
		return nil
	}
	return fmt.Errorf("unknown command %q\n%s", command, usage)
}

// replayAll replays every dead letter and reports each failure; the ones
// that fail stay.
func replayAll(ctx context.Context, dls *DeadLetters, stdout io.Writer) error {
	list, err := dls.List(ctx)
	if err != nil {
		return err
	}
	var errs []error
	stored := 0
	for _, dl := range list {
		if err := dls.Replay(ctx, dl.VisitID); err != nil {
			errs = append(errs, err)
			continue
		}
		stored++
	}
	fmt.Fprintf(stdout, "replayed %d of %d dead letters\n", stored, len(list))
	return errors.Join(errs...)
}

// parseInterleaved parses flags that stand before, between or after the
// positional arguments, as in "user add anna.berger -id 23", and returns
// the positional ones. The flag package alone stops at the first of them.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return positional, nil
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
}
