package faulttest

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// User is a fixture salesman.
type User struct {
	ID       string
	Username string
	Password string
}

// Users are the fixture salesmen that Start imports. The posters log in as
// them in turn.
var Users = []User{
	{"41", "alma.fischer", "fault-matrix-01"},
	{"42", "bruno.kern", "fault-matrix-02"},
	{"43", "clara.weiss", "fault-matrix-03"},
	{"44", "david.lang", "fault-matrix-04"},
	{"45", "elena.roth", "fault-matrix-05"},
	{"46", "felix.brandt", "fault-matrix-06"},
}

// Clinics are the ids of the fixture clinics that Start imports.
var Clinics = []string{"101", "102", "103", "104", "105", "106", "107", "108", "109", "110"}

// Devices are the ids of the fixture devices that Start imports.
var Devices = []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}

// writeFixtures writes users.csv, clients.csv and devices.csv into dir in
// the formats of the import commands.
func writeFixtures(dir string) error {
	var users, clients, devices strings.Builder
	users.WriteString("id,username,name,password\n")
	for _, u := range Users {
		fmt.Fprintf(&users, "%s,%s,Salesman %s,%s\n", u.ID, u.Username, u.ID, u.Password)
	}
	clients.WriteString("id,name,city\n")
	for _, id := range Clinics {
		fmt.Fprintf(&clients, "%s,Praxis %s,Linz\n", id, id)
	}
	devices.WriteString("id,name,category\n")
	for _, id := range Devices {
		fmt.Fprintf(&devices, "%d,Device %d,monitoring\n", id, id)
	}

	files := map[string]string{"users.csv": users.String(), "clients.csv": clients.String(), "devices.csv": devices.String()}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			return fmt.Errorf("write fixture %s: %w", name, err)
		}
	}
	return nil
}
