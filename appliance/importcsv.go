package appliance

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/crypto/bcrypt"

	"github.com/visitrelay/visitrelay/internal/visit"
)

// csvRow is one data row of an import file with its line number.
type csvRow struct {
	line   int
	fields map[string]string
}

// readCSV reads a CSV file whose header names exactly the given columns, in
// any order. It returns the rows that parsed, the lines that did not (as
// errors naming the line), and an error only when the file cannot be read.
func readCSV(path string, columns []string) ([]csvRow, []error, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("open import file: %w", err)
	}
	defer f.Close()

	r := csv.NewReader(f)
	r.FieldsPerRecord = len(columns)
	header, err := r.Read()
	if err != nil {
		return nil, nil, fmt.Errorf("%s line 1: read header: %w; expected %s", path, err, strings.Join(columns, ","))
	}
	for i := range header {
		header[i] = strings.TrimSpace(strings.TrimPrefix(header[i], "\ufeff"))
	}
	sorted := slices.Sorted(slices.Values(header))
	if !slices.Equal(sorted, slices.Sorted(slices.Values(columns))) {
		return nil, nil, fmt.Errorf("%s line 1: header %q must name the columns %s", path, strings.Join(header, ","), strings.Join(columns, ","))
	}

	var rows []csvRow
	var problems []error
	for {
		record, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			// A csv.ParseError names its own line; FieldPos is only valid
			// after a record was read.
			var parseErr *csv.ParseError
			if !errors.As(err, &parseErr) {
				return nil, nil, fmt.Errorf("%s: read: %w", path, err)
			}
			problems = append(problems, parseErr)
			if len(problems) > 50 || parseErr.Err == csv.ErrQuote || parseErr.Err == csv.ErrBareQuote {
				break // a quoting error leaves the reader out of step with the lines
			}
			continue
		}
		line, _ := r.FieldPos(0)
		row := csvRow{line: line, fields: map[string]string{}}
		for i, name := range header {
			row.fields[name] = strings.TrimSpace(record[i])
		}
		rows = append(rows, row)
	}
	return rows, problems, nil
}

// rowChecker collects the problems of all rows of one import.
type rowChecker struct {
	problems []error
	seen     map[string]int // id to the line that first used it
}

func (c *rowChecker) fail(row csvRow, column, rule string) {
	c.problems = append(c.problems, fmt.Errorf("line %d: %s %q: %s", row.line, column, row.fields[column], rule))
}

func (c *rowChecker) unique(row csvRow, column string) {
	if c.seen == nil {
		c.seen = map[string]int{}
	}
	key := row.fields[column]
	if first, ok := c.seen[key]; ok {
		c.fail(row, column, fmt.Sprintf("repeats the %s of line %d", column, first))
		return
	}
	c.seen[key] = row.line
}

func (c *rowChecker) text(row csvRow, column string, required bool, maxLen int) {
	v := row.fields[column]
	switch {
	case required && v == "":
		c.fail(row, column, "is required")
	case !utf8.ValidString(v):
		c.fail(row, column, "is not valid UTF-8")
	case utf8.RuneCountInString(v) > maxLen:
		c.fail(row, column, fmt.Sprintf("must be at most %d characters", maxLen))
	}
}

func (c *rowChecker) err(path string) error {
	if len(c.problems) == 0 {
		return nil
	}
	return fmt.Errorf("%s: %d problems, nothing imported:\n%w", path, len(c.problems), errors.Join(c.problems...))
}

// ImportClients upserts the clinics of a CSV file (id,name,city) in one
// transaction. Any bad row rejects the whole file.
func ImportClients(ctx context.Context, pool *pgxpool.Pool, path string) (int, error) {
	rows, parseProblems, err := readCSV(path, []string{"id", "name", "city"})
	if err != nil {
		return 0, err
	}
	// Rows that parsed are checked too, so one run reports every problem.
	check := rowChecker{problems: parseProblems}
	for _, row := range rows {
		if id := row.fields["id"]; !visit.IsToken(id) || len(id) > visit.MaxIDLength {
			check.fail(row, "id", "must be 1 to 64 letters, digits, '-' or '_'")
		}
		check.unique(row, "id")
		check.text(row, "name", true, 200)
		check.text(row, "city", false, 100)
	}
	if err := check.err(path); err != nil {
		return 0, err
	}
	return len(rows), upsertRows(ctx, pool, rows, `
INSERT INTO clients (id, name, city) VALUES ($1, $2, $3)
ON CONFLICT (id) DO UPDATE SET name = excluded.name, city = excluded.city, updated_at = now()
WHERE (clients.name, clients.city) IS DISTINCT FROM (excluded.name, excluded.city)`,
		func(r csvRow) []any { return []any{r.fields["id"], r.fields["name"], r.fields["city"]} })
}

// ImportDevices upserts the devices of a CSV file (id,name,category).
func ImportDevices(ctx context.Context, pool *pgxpool.Pool, path string) (int, error) {
	rows, parseProblems, err := readCSV(path, []string{"id", "name", "category"})
	if err != nil {
		return 0, err
	}
	// Rows that parsed are checked too, so one run reports every problem.
	check := rowChecker{problems: parseProblems}
	for _, row := range rows {
		if id, err := strconv.ParseInt(row.fields["id"], 10, 64); err != nil || id < 1 {
			check.fail(row, "id", "must be a positive integer")
		}
		check.unique(row, "id")
		check.text(row, "name", true, 200)
		check.text(row, "category", false, 100)
	}
	if err := check.err(path); err != nil {
		return 0, err
	}
	return len(rows), upsertRows(ctx, pool, rows, `
INSERT INTO devices (id, name, category) VALUES ($1, $2, $3)
ON CONFLICT (id) DO UPDATE SET name = excluded.name, category = excluded.category, updated_at = now()
WHERE (devices.name, devices.category) IS DISTINCT FROM (excluded.name, excluded.category)`,
		func(r csvRow) []any { return []any{r.fields["id"], r.fields["name"], r.fields["category"]} })
}

// ImportUsers upserts salesmen from a CSV file (id,username,name,password),
// hashing each password. It is meant for first set-up and demos; passwords
// in files should be deleted after the import.
func ImportUsers(ctx context.Context, pool *pgxpool.Pool, path string) (int, error) {
	rows, parseProblems, err := readCSV(path, []string{"id", "username", "name", "password"})
	if err != nil {
		return 0, err
	}
	// Rows that parsed are checked too, so one run reports every problem.
	check := rowChecker{problems: parseProblems}
	for _, row := range rows {
		if id := row.fields["id"]; !visit.IsToken(id) || len(id) > visit.MaxIDLength {
			check.fail(row, "id", "must be 1 to 64 letters, digits, '-' or '_'")
		}
		if err := checkUsername(row.fields["username"]); err != nil {
			check.fail(row, "username", err.Error())
		}
		check.unique(row, "username")
		check.text(row, "name", true, 200)
		if err := checkPassword(row.fields["password"]); err != nil {
			check.problems = append(check.problems, fmt.Errorf("line %d: password: %w", row.line, err))
		}
	}
	if err := check.err(path); err != nil {
		return 0, err
	}
	for _, row := range rows {
		hash, err := bcrypt.GenerateFromPassword([]byte(row.fields["password"]), bcrypt.DefaultCost)
		if err != nil {
			return 0, fmt.Errorf("hash password of line %d: %w", row.line, err)
		}
		row.fields["hash"] = string(hash)
	}
	return len(rows), upsertRows(ctx, pool, rows, upsertUser, func(r csvRow) []any {
		return []any{r.fields["id"], r.fields["username"], r.fields["name"], r.fields["hash"]}
	})
}

const upsertUser = `
INSERT INTO users (id, username, name, password_hash) VALUES ($1, $2, $3, $4)
ON CONFLICT (id) DO UPDATE SET username = excluded.username, name = excluded.name,
    password_hash = excluded.password_hash, password_changed_at = now(), updated_at = now()`

// upsertRows writes all rows in one transaction and notifies the directory
// publisher when it commits.
func upsertRows(ctx context.Context, pool *pgxpool.Pool, rows []csvRow, sql string, args func(csvRow) []any) error {
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		for _, row := range rows {
			if _, err := tx.Exec(ctx, sql, args(row)...); err != nil {
				return fmt.Errorf("import line %d: %w", row.line, err)
			}
		}
		return notifyDirectory(ctx, tx)
	})
}

func notifyDirectory(ctx context.Context, tx pgx.Tx) error {
	if _, err := tx.Exec(ctx, "SELECT pg_notify($1, '')", directoryChannel); err != nil {
		return fmt.Errorf("notify directory publisher: %w", err)
	}
	return nil
}
