package migrate

import (
	"strings"
	"testing"
	"testing/fstest"
)

func TestLoad(t *testing.T) {
	fsys := fstest.MapFS{
		"m/002_more.up.sql":    {Data: []byte("ALTER {{p}}x;")},
		"m/001_initial.up.sql": {Data: []byte("-- comment\nCREATE TABLE {{p}}x (a int);\nCREATE INDEX i ON {{p}}x (a);\n")},
		"m/readme.txt":         {Data: []byte("ignored")},
	}
	files, err := Load(fsys, "m", strings.NewReplacer("{{p}}", "es_"))
	if err != nil || len(files) != 2 || files[0].Version != 1 || files[1].Name != "002_more.up.sql" || files[1].SQL != "ALTER es_x;" {
		t.Fatalf("Load = %+v, %v", files, err)
	}
	if st := Statements(files[0].SQL); len(st) != 2 || st[0] != "CREATE TABLE es_x (a int)" || st[1] != "CREATE INDEX i ON es_x (a)" {
		t.Fatalf("Statements = %q", st)
	}
	for _, bad := range []fstest.MapFS{
		{"m/x_bad.up.sql": {Data: []byte("")}},
		{"m/000_zero.up.sql": {Data: []byte("")}},
		{"m/001_a.up.sql": {Data: []byte("")}, "m/001_b.up.sql": {Data: []byte("")}},
	} {
		if _, err := Load(bad, "m", nil); err == nil {
			t.Errorf("Load(%v) accepted bad names", bad)
		}
	}
}
