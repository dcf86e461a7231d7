package load

import (
	"regexp"
	"strings"
	"testing"
)

func TestReadUsersErrors(t *testing.T) {
	tests := []struct {
		name  string
		input string
		want  string
	}{
		{"empty file", "", "read header"},
		{"wrong header", "id,user,name,password\n", "invalid header"},
		{"missing column", "id,username,name,password\n1,anna.berger,Anna Berger\n", "wrong number of fields"},
		{"empty password", "id,username,name,password\n1,anna.berger,Anna Berger,\n", "line 2: id, username and password must not be empty"},
		{
			"username twice",
			"id,username,name,password\n1,anna.berger,Anna Berger,cedar-willow-69\n2,anna.berger,Anna Berger,maple-comet-12\n",
			`line 3: username "anna.berger" is listed twice`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := readUsers(strings.NewReader(tt.input))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("readUsers error = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestReadUsersQuotedName(t *testing.T) {
	input := "id,username,name,password\n7,lea.moser,\"Moser, Lea\",juniper-river-33\n"
	accounts, err := readUsers(strings.NewReader(input))
	if err != nil {
		t.Fatalf("readUsers: %v", err)
	}
	if len(accounts) != 1 || accounts[0].Name != "Moser, Lea" {
		t.Errorf("accounts = %+v, want one named %q", accounts, "Moser, Lea")
	}
}

func TestDemoUsersFile(t *testing.T) {
	accounts, err := readUsersFile("../../configs/demo/users.csv")
	if err != nil {
		t.Fatalf("readUsersFile: %v", err)
	}
	if len(accounts) != 35 {
		t.Errorf("demo users = %d, want 35", len(accounts))
	}
	username := regexp.MustCompile(`^[a-z0-9][a-z0-9.-]*$`)
	passwords := make(map[string]bool)
	hasUser23 := false
	for _, a := range accounts {
		if !username.MatchString(a.Username) {
			t.Errorf("username %q has characters other than lowercase letters, digits, dots and hyphens", a.Username)
		}
		if len(a.Password) < 12 {
			t.Errorf("password of %q has %d characters, want at least 12", a.Username, len(a.Password))
		}
		passwords[a.Password] = true
		hasUser23 = hasUser23 || a.ID == "23"
	}
	if !hasUser23 {
		t.Error("demo users lack id 23, the id used in the API examples")
	}
	if len(passwords) < len(accounts)/2 {
		t.Errorf("demo users share passwords: %d distinct for %d users", len(passwords), len(accounts))
	}
}
