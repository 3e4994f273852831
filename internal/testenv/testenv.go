// Package testenv finds the servers the tests talk to. Each is named by an
// environment variable with a local default. A server that cannot be reached
// fails the test under CI=true and skips it otherwise, with a message that
// says how to start it.
package testenv

import (
	"crypto/rand"
	"encoding/hex"
	"net"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"
)

// Server describes one test server.
type Server struct {
	Env     string // environment variable that overrides Default
	Default string // URL or DSN used when Env is unset
	Start   string // how a developer starts it
}

var (
	Postgres = Server{
		Env:     "ES_TEST_POSTGRES_URL",
		Default: "postgres://postgres@127.0.0.1:5432/test?sslmode=disable",
		Start:   "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start",
	}
	MySQL = Server{
		Env:     "ES_TEST_MYSQL_URL",
		Default: "root@tcp(127.0.0.1:3306)/test",
		Start:   "start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd",
	}
	DynamoDB = Server{
		Env:     "ES_TEST_DYNAMODB_ENDPOINT",
		Default: "http://127.0.0.1:4567",
		Start:   "scripts/dynalite.sh start",
	}
	Kinesis = Server{
		Env:     "ES_TEST_KINESIS_ENDPOINT",
		Default: "http://127.0.0.1:4568",
		Start:   "scripts/kinesalite.sh start",
	}
	RabbitMQ = Server{
		Env:     "ES_TEST_RABBITMQ_URL",
		Default: "amqp://guest:guest@127.0.0.1:5672/",
		Start:   "rabbitmq-server -detached",
	}
	NATS = Server{
		Env:     "ES_TEST_NATS_URL",
		Default: "nats://127.0.0.1:4222",
		Start:   "start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server",
	}
)

// URL returns the server's address, after checking that it accepts TCP
// connections: under CI=true an unreachable server fails t, otherwise t is
// skipped.
func (s Server) URL(t testing.TB) string {
	t.Helper()
	u := os.Getenv(s.Env)
	if u == "" {
		u = s.Default
	}
	addr := hostPort(u)
	conn, err := net.DialTimeout("tcp", addr, 3*time.Second)
	if err != nil {
		msg := "cannot reach " + addr + " (" + err.Error() + "); set " + s.Env + " or start the server: " + s.Start
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	conn.Close()
	return u
}

// hostPort pulls host:port out of a URL or a go-sql-driver DSN
// (user@tcp(host:port)/db).
func hostPort(u string) string {
	if i := strings.Index(u, "tcp("); i >= 0 {
		rest := u[i+4:]
		if j := strings.IndexByte(rest, ')'); j >= 0 {
			return rest[:j]
		}
	}
	if p, err := url.Parse(u); err == nil && p.Host != "" {
		return p.Host
	}
	return u
}

// Name returns a name for a test's own tables or schema: prefix and a random
// suffix of lower-case hex, so runs never share (or inherit) tables.
func Name(prefix string) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}
