package main

// statements holds the SQL for one table pair, built once at Init from
// validated, quoted names (values always travel as parameters).
type statements struct {
	migrate   []string
	valueType string // $1 table: the type of its value column, to refuse foreign layouts

	get     string // $1 key
	bulkGet string // $1 keys text[]

	// Writes take $1 key, $2 value bytea, $3 isbinary, $4 ttl seconds (0 = none).
	upsert string // last-write without etag
	insert string // first-write without etag: no row unless the key is absent or expired
	update string // $5 etag: no row unless the etag matches a live row

	delete     string // $1 key
	deleteETag string // $1 key, $2 etag

	queryBase string // SELECT key, value, isbinary, etag of live rows, jsonb "doc" in scope; Query appends to it

	claimCleanup  string // $1 metadata key, $2 interval ms: a row iff the sweep is due
	deleteExpired string
}

func newStatements(table, meta string) statements {
	const live = `(expiredate IS NULL OR expiredate > now())`
	const expiry = `CASE WHEN $4::bigint > 0 THEN now() + make_interval(secs => $4::bigint) END`
	return statements{
		migrate: []string{
			`CREATE TABLE IF NOT EXISTS ` + table + ` (
				key text NOT NULL PRIMARY KEY,
				value bytea NOT NULL,
				isbinary boolean NOT NULL,
				etag uuid NOT NULL,
				insertdate timestamptz NOT NULL DEFAULT now(),
				updatedate timestamptz NULL,
				expiredate timestamptz NULL)`,
			`CREATE TABLE IF NOT EXISTS ` + meta + ` (key text NOT NULL PRIMARY KEY, value text NOT NULL)`,
		},
		valueType: `SELECT format_type(atttypid, atttypmod) FROM pg_attribute
			WHERE attrelid = $1::regclass AND attname = 'value' AND NOT attisdropped`,
		get: `SELECT value, isbinary, etag, expiredate FROM ` + table +
			` WHERE key = $1 AND ` + live,
		bulkGet: `SELECT key, value, isbinary, etag, expiredate FROM ` + table +
			` WHERE key = ANY($1::text[]) AND ` + live,
		upsert: `INSERT INTO ` + table + ` AS t (key, value, isbinary, etag, expiredate)
			VALUES ($1, $2, $3, gen_random_uuid(), ` + expiry + `)
			ON CONFLICT (key) DO UPDATE SET value = excluded.value, isbinary = excluded.isbinary,
				etag = excluded.etag, expiredate = excluded.expiredate, updatedate = now(),
				insertdate = CASE WHEN t.expiredate <= now() THEN now() ELSE t.insertdate END`,
		insert: `INSERT INTO ` + table + ` AS t (key, value, isbinary, etag, expiredate)
			VALUES ($1, $2, $3, gen_random_uuid(), ` + expiry + `)
			ON CONFLICT (key) DO UPDATE SET value = excluded.value, isbinary = excluded.isbinary,
				etag = excluded.etag, expiredate = excluded.expiredate, updatedate = NULL, insertdate = now()
			WHERE t.expiredate <= now()`,
		update: `UPDATE ` + table + ` SET value = $2, isbinary = $3, etag = gen_random_uuid(),
				expiredate = ` + expiry + `, updatedate = now()
			WHERE key = $1 AND etag = $5 AND ` + live,
		delete:     `DELETE FROM ` + table + ` WHERE key = $1`,
		deleteETag: `DELETE FROM ` + table + ` WHERE key = $1 AND etag = $2 AND ` + live,
		// doc is the value as jsonb, NULL for values that are not JSON.
		queryBase: `SELECT key, value, isbinary, etag FROM (SELECT key, value, isbinary, etag,
				CASE WHEN isbinary THEN NULL ELSE convert_from(value, 'UTF8')::jsonb END AS doc
				FROM ` + table + ` WHERE ` + live + `) AS q WHERE true`,
		claimCleanup: `INSERT INTO ` + meta + ` AS m (key, value) VALUES ($1, now()::text)
			ON CONFLICT (key) DO UPDATE SET value = now()::text
			WHERE m.value::timestamptz <= now() - make_interval(secs => $2::bigint / 1000.0)`,
		deleteExpired: `DELETE FROM ` + table + ` WHERE expiredate IS NOT NULL AND expiredate <= now()`,
	}
}
