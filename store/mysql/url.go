package mysql

import (
	"context"
	"net/url"
	"strings"

	"github.com/go-sql-driver/mysql"

	"github.com/eventsource-go/eventsource/storeurl"
)

// mysql://user:pass@host:3306/db, with prefix= and the driver's connection
// parameters below.
func init() {
	storeurl.Register(storeurl.Scheme{Name: "mysql", Params: append([]string{"prefix"}, dsnParams...), Open: openURL})
}

// dsnParams are the go-sql-driver/mysql DSN parameters a mysql:// URL may
// carry.
var dsnParams = []string{"allowCleartextPasswords", "allowNativePasswords", "charset", "readTimeout", "timeout", "tls", "writeTimeout"}

func openURL(ctx context.Context, u *url.URL, o storeurl.Options) (storeurl.Store, error) {
	cfg := mysql.NewConfig()
	cfg.Net = "tcp"
	cfg.Addr = u.Host
	if u.Port() == "" {
		cfg.Addr = u.Hostname() + ":3306"
	}
	if u.User != nil {
		cfg.User = u.User.Username()
		cfg.Passwd, _ = u.User.Password()
	}
	cfg.DBName = strings.TrimPrefix(u.Path, "/")
	q := u.Query()
	var opts []Option
	if q.Has("prefix") {
		opts = append(opts, WithTablePrefix(q.Get("prefix")))
	}
	if o.MustExist {
		opts = append(opts, WithoutAutoMigrate())
	}
	// The driver parses its own parameters from the DSN.
	dsn := cfg.FormatDSN()
	q.Del("prefix")
	if len(q) > 0 {
		sep := "?"
		if strings.Contains(dsn, "?") {
			sep = "&"
		}
		dsn += sep + q.Encode()
	}
	return Open(ctx, dsn, opts...)
}
