// Package mysql is a placeholder; see the full overview below.
package mysql
