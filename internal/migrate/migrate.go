// Package migrate reads the numbered schema migrations the SQL stores embed
// (migrations/NNN_name.up.sql). Each store applies them its own way (its
// lock, its record table); this is the part they share.
package migrate

import (
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/eventsource-go/eventsource"
)

// File is one migration.
type File struct {
	Version int    // NNN
	Name    string // the file name
	SQL     string // its text, placeholders replaced
}

// Load returns the *.up.sql files of dir in fsys in version order, with
// placeholders replaced by r (nil: none). Files must be named
// NNN_name.up.sql with distinct NNN ≥ 1.
func Load(fsys fs.FS, dir string, r *strings.Replacer) ([]File, error) {
	names, err := fs.Glob(fsys, path.Join(dir, "*.up.sql"))
	if err != nil {
		return nil, err
	}
	var out []File
	for _, name := range names {
		base := path.Base(name)
		num, _, ok := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v < 1 {
			return nil, fmt.Errorf("migration file %q is not named NNN_name.up.sql", base)
		}
		b, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, err
		}
		text := string(b)
		if r != nil {
			text = r.Replace(text)
		}
		out = append(out, File{Version: v, Name: base, SQL: text})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	for i := 1; i < len(out); i++ {
		if out[i].Version == out[i-1].Version {
			return nil, fmt.Errorf("two migrations numbered %d", out[i].Version)
		}
	}
	return out, nil
}

// Statements splits a migration into statements on semicolons that end a
// line, dropping comment lines, for drivers that run one statement per call.
// The files are the project's own: no semicolon ends a line inside a string.
func Statements(sql string) []string {
	var lines []string
	for _, l := range strings.Split(sql, "\n") {
		if t := strings.TrimSpace(l); t != "" && !strings.HasPrefix(t, "--") {
			lines = append(lines, l)
		}
	}
	var out []string
	for _, st := range strings.SplitAfter(strings.Join(lines, "\n"), ";\n") {
		if st = strings.TrimSuffix(strings.TrimSpace(st), ";"); st != "" {
			out = append(out, st)
		}
	}
	return out
}

// Verdict is what a store's Verify reports once it has looked at its
// migrations table without creating anything: exists says whether table is
// there and current is the highest migration it records. A missing table
// wraps eventsource.ErrNotFound, a schema older than files wraps
// eventsource.ErrInvalidConfig; a current (or newer) one is nil. store
// starts the message ("postgres", "sqlite /path/events.db").
func Verdict(store, table string, exists bool, current int, files []File) error {
	if !exists {
		return fmt.Errorf("%w: %s: no event store here: table %s does not exist (Migrate creates it, as does the first write of a store opened with auto-migration)",
			eventsource.ErrNotFound, store, table)
	}
	if latest := files[len(files)-1].Version; current < latest {
		return fmt.Errorf("%w: %s: the schema is at migration %d, this version needs %d: call Migrate",
			eventsource.ErrInvalidConfig, store, current, latest)
	}
	return nil
}
