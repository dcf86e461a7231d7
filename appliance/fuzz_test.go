package appliance

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzReadCSV feeds arbitrary files to the CSV reader behind the imports. It
// must not panic, and every rejection must say which line is at fault.
func FuzzReadCSV(f *testing.F) {
	f.Add("id,name,city\n102,Praxis Dr. Keller,Graz\n")
	f.Add("id,name,city\n\"unterminated,x,y\n")
	f.Add("\ufeffid,city,name\n1,Wien,\"a \"\"b\"\", c\"\n")
	f.Add("id,name\n1,2,3\n")
	f.Add("")
	f.Add("id,name,city\n\xff\xfe,x,y\n")

	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, content string) {
		path := filepath.Join(dir, "fuzz.csv")
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		rows, problems, err := readCSV(path, []string{"id", "name", "city"})
		if err != nil {
			if !strings.Contains(err.Error(), "line ") {
				t.Fatalf("rejection names no line: %v", err)
			}
			return
		}
		for _, p := range problems {
			if !strings.Contains(p.Error(), "line ") {
				t.Fatalf("problem names no line: %v", p)
			}
		}
		for _, r := range rows {
			if r.line < 2 || len(r.fields) != 3 {
				t.Fatalf("row %+v has a bad line number or field count", r)
			}
		}
	})
}
