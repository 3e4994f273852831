package storeurl_test

import (
	"context"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/eventsource-go/eventsource"
	_ "github.com/eventsource-go/eventsource/store/memory"
	_ "github.com/eventsource-go/eventsource/store/sqlite"
	"github.com/eventsource-go/eventsource/store/storetest"
	"github.com/eventsource-go/eventsource/storeurl"
)

// The core module's stores; each driver module tests its own URLs.
func TestOpen(t *testing.T) {
	dir := t.TempDir()
	storetest.OpenURL(t, "memory://")
	storetest.OpenURL(t, "sqlite://"+filepath.Join(dir, "abs.db"))
	storetest.OpenURL(t, "sqlite://"+filepath.Join(dir, "prefixed.db")+"?prefix=app_")
	wd, _ := os.Getwd()
	t.Chdir(dir)
	storetest.OpenURL(t, "sqlite://relative.db")
	if _, err := os.Stat(filepath.Join(dir, "relative.db")); err != nil {
		t.Fatalf("relative path not created in the working directory: %v", err)
	}
	t.Chdir(wd)
}

func TestOpenRefusesBadURLs(t *testing.T) {
	for _, raw := range []string{"", "events.db", "ftp://x", "sqlite://", "sqlite://" + filepath.Join(t.TempDir(), "x.db") + "?prefix=bad-prefix"} {
		s, err := storeurl.Open(context.Background(), raw)
		if err == nil {
			s.Close()
			t.Errorf("Open(%q) succeeded", raw)
		} else if !errors.Is(err, eventsource.ErrInvalidConfig) {
			t.Errorf("Open(%q) = %v, want ErrInvalidConfig", raw, err)
		}
	}
	// An unknown scheme lists the registered ones: here only core's.
	_, err := storeurl.Open(context.Background(), "postgres://x@127.0.0.1/db")
	if !errors.Is(err, eventsource.ErrInvalidConfig) || !strings.Contains(err.Error(), "want one of memory, sqlite") {
		t.Errorf("Open of an unregistered scheme = %v", err)
	}
	if got := storeurl.Schemes(); !slices.Equal(got, []string{"memory", "sqlite"}) {
		t.Errorf("Schemes() = %v: linking storeurl and core's stores registered more", got)
	}
}

// A misspelt parameter is refused, naming the ones the scheme takes.
func TestOpenRefusesUnknownParameters(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.db")
	for raw, says := range map[string]string{
		"sqlite://" + path + "?prefx=app_": `"prefx" (sqlite:// takes prefix)`,
		"memory://?prefix=x":               `"prefix" (memory:// takes no parameters)`,
	} {
		_, err := storeurl.Open(context.Background(), raw)
		if !errors.Is(err, eventsource.ErrInvalidConfig) || !strings.Contains(err.Error(), says) {
			t.Errorf("Open(%q) = %v; want ErrInvalidConfig saying %s", raw, err, says)
		}
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("a refused URL created %s", path)
	}
}

// MustExist creates nothing and reports a missing store as not found; an
// existing one opens.
func TestMustExist(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "x.db")
	if _, err := storeurl.Open(ctx, "sqlite://"+path, storeurl.MustExist()); !errors.Is(err, eventsource.ErrNotFound) || !strings.Contains(err.Error(), path) {
		t.Fatalf("MustExist on a missing file = %v", err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("MustExist created %s", path)
	}
	storetest.OpenURL(t, "sqlite://"+path)
	if _, err := storeurl.Open(ctx, "sqlite://"+path+"?prefix=other_", storeurl.MustExist()); !errors.Is(err, eventsource.ErrNotFound) || !strings.Contains(err.Error(), "other_schema_migrations") {
		t.Fatalf("MustExist with another prefix = %v", err)
	}
	storetest.OpenURL(t, "sqlite://"+path, storeurl.MustExist())
}

func TestRegister(t *testing.T) {
	open := func(context.Context, *url.URL, storeurl.Options) (storeurl.Store, error) { return nil, nil }
	for name, s := range map[string]storeurl.Scheme{
		"twice":   {Name: "sqlite", Open: open},
		"no name": {Open: open},
		"no Open": {Name: "x"},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Register %s did not panic", name)
				}
			}()
			storeurl.Register(s)
		}()
	}
}
