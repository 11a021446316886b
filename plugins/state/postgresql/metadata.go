package main

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/outrigger/outrigger/plugins/sdk"
)

// config is the parsed component metadata. Field names are Dapr's
// (state.postgresql v1.14); see README.md for the table.
type config struct {
	connString      string
	table           string // quoted, possibly schema-qualified
	metadataTable   string // quoted, possibly schema-qualified
	lockKey         string // advisory-lock name for schema set-up
	timeout         time.Duration
	cleanupInterval time.Duration // <= 0 disables the cleanup
	maxConns        int32
	maxConnIdleTime time.Duration
}

// identRe is a plain (unquoted) SQL identifier, optionally schema-qualified.
var identRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$`)

// parse reads the component metadata. Unknown keys are ignored, as Dapr
// ignores them (keyPrefix and actorStateStore are the proxy's business).
func parse(md sdk.Metadata) (config, error) {
	c := config{timeout: 20 * time.Second, cleanupInterval: time.Hour}
	c.connString = strings.TrimSpace(md["connectionString"])
	if c.connString == "" {
		return c, fmt.Errorf(`metadata connectionString is required (e.g. "host=127.0.0.1 user=postgres dbname=test sslmode=disable")`)
	}
	schema := strings.TrimSpace(md["schema"])
	var err error
	if c.table, err = qualified("tableName", md["tableName"], "state", schema); err != nil {
		return c, err
	}
	if c.metadataTable, err = qualified("metadataTableName", md["metadataTableName"], "dapr_metadata", schema); err != nil {
		return c, err
	}
	c.lockKey = "outrigger-state-postgresql:" + c.table
	if c.timeout, err = duration(md, "timeout", c.timeout); err != nil {
		return c, err
	}
	if c.timeout <= 0 {
		return c, fmt.Errorf("metadata timeout=%q: must be positive", md["timeout"])
	}
	// cleanupIntervalInSeconds is Dapr's older spelling.
	if c.cleanupInterval, err = duration(md, "cleanupIntervalInSeconds", c.cleanupInterval); err != nil {
		return c, err
	}
	if c.cleanupInterval, err = duration(md, "cleanupInterval", c.cleanupInterval); err != nil {
		return c, err
	}
	if v := strings.TrimSpace(md["maxConns"]); v != "" {
		n, err := strconv.ParseInt(v, 10, 32)
		if err != nil || n < 1 {
			return c, fmt.Errorf("metadata maxConns=%q: want a positive integer", v)
		}
		c.maxConns = int32(n)
	}
	if c.maxConnIdleTime, err = duration(md, "connectionMaxIdleTime", 0); err != nil {
		return c, err
	}
	return c, nil
}

// qualified validates a table name and returns it quoted, schema-qualified
// when schema is set and the name has no schema of its own. Names are folded
// to lower case first, as PostgreSQL does for the unquoted names Dapr uses;
// quoting keeps reserved words working.
func qualified(key, v, def, schema string) (string, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		v = def
	}
	if !identRe.MatchString(v) {
		return "", fmt.Errorf("metadata %s=%q: want a name of letters, digits and _ (optionally schema.name)", key, v)
	}
	if schema != "" && !strings.Contains(v, ".") {
		if !identRe.MatchString(schema) || strings.Contains(schema, ".") {
			return "", fmt.Errorf("metadata schema=%q: want a name of letters, digits and _", schema)
		}
		v = schema + "." + v
	}
	return pgx.Identifier(strings.Split(strings.ToLower(v), ".")).Sanitize(), nil
}

// duration reads a Go duration ("30s") or a plain integer of seconds, as
// Dapr's PostgreSQL component documents.
func duration(md sdk.Metadata, key string, def time.Duration) (time.Duration, error) {
	v := strings.TrimSpace(md[key])
	if v == "" {
		return def, nil
	}
	if d, err := time.ParseDuration(v); err == nil {
		return d, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return def, fmt.Errorf(`metadata %s=%q: want a duration such as "30s" or an integer of seconds`, key, v)
	}
	return time.Duration(n) * time.Second, nil
}
