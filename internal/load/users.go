package load

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
)

// usersHeader is the header line a users CSV must start with, in this order.
var usersHeader = []string{"id", "username", "name", "password"}

// account is one salesman's row of the users CSV.
type account struct {
	ID       string
	Username string
	Name     string
	Password string
}

func readUsersFile(path string) ([]account, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read users %q: %w", path, err)
	}
	defer f.Close()

	accounts, err := readUsers(f)
	if err != nil {
		return nil, fmt.Errorf("read users %q: %w", path, err)
	}
	return accounts, nil
}

// readUsers parses a users CSV and returns every problem found, each with
// its line number.
func readUsers(r io.Reader) ([]account, error) {
	reader := csv.NewReader(r)
	reader.FieldsPerRecord = len(usersHeader)
	header, err := reader.Read()
	if err != nil {
		return nil, fmt.Errorf("read header: %w", err)
	}
	if !slices.Equal(header, usersHeader) {
		return nil, fmt.Errorf("invalid header %q: must be %q", header, usersHeader)
	}

	var accounts []account
	var errs []error
	seen := make(map[string]bool)
	for {
		record, err := reader.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		line, _ := reader.FieldPos(0)
		a := account{ID: record[0], Username: record[1], Name: record[2], Password: record[3]}
		if a.ID == "" || a.Username == "" || a.Password == "" {
			errs = append(errs, fmt.Errorf("line %d: id, username and password must not be empty", line))
			continue
		}
		if seen[a.Username] {
			errs = append(errs, fmt.Errorf("line %d: username %q is listed twice", line, a.Username))
			continue
		}
		seen[a.Username] = true
		accounts = append(accounts, a)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return accounts, nil
}
