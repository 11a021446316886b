package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/outrigger/outrigger/plugins/sdk"
)

// Query runs a Dapr state query over rows whose value is JSON.
func (s *Store) Query(ctx context.Context, q *sdk.Query) (*sdk.QueryResponse, error) {
	filter, err := sdk.ParseFilter(q.Filter)
	if err != nil {
		return nil, err
	}
	where, args, err := filterSQL(filter)
	if err != nil {
		return nil, err
	}
	offset := int64(0)
	if q.Page.Token != "" {
		offset, err = strconv.ParseInt(q.Page.Token, 10, 64)
		if err != nil || offset < 0 {
			return nil, fmt.Errorf("query page token %q: not a token this store issued", q.Page.Token)
		}
	}
	if q.Page.Limit < 0 {
		return nil, fmt.Errorf("query page limit %d: must not be negative", q.Page.Limit)
	}

	var sb strings.Builder
	sb.WriteString(`SELECT key, value, etag FROM ` + s.cfg.tableName + ` WHERE is_json = 1 AND ` + notExpired)
	allArgs := []any{time.Now().UnixMilli()}
	if where != "" {
		sb.WriteString(" AND " + where)
		allArgs = append(allArgs, args...)
	}
	sb.WriteString(" ORDER BY ")
	for _, so := range q.Sort {
		path, err := jsonPath(so.Key)
		if err != nil {
			return nil, fmt.Errorf("query sort: %w", err)
		}
		dir := "ASC"
		switch strings.ToUpper(so.Order) {
		case "", "ASC":
		case "DESC":
			dir = "DESC"
		default:
			return nil, fmt.Errorf("query sort %q: order %q, want ASC or DESC", so.Key, so.Order)
		}
		sb.WriteString("json_extract(CAST(value AS TEXT), ?) " + dir + ", ")
		allArgs = append(allArgs, path)
	}
	sb.WriteString("key ASC") // stable order makes offset paging consistent
	if q.Page.Limit > 0 {
		// Fetch one more row than asked to know whether another page exists.
		sb.WriteString(" LIMIT ? OFFSET ?")
		allArgs = append(allArgs, q.Page.Limit+1, offset)
	} else if offset > 0 {
		sb.WriteString(" LIMIT -1 OFFSET ?")
		allArgs = append(allArgs, offset)
	}

	ctx, cancel := s.opCtx(ctx)
	defer cancel()
	rows, err := s.db.QueryContext(ctx, sb.String(), allArgs...)
	if err != nil {
		return nil, fmt.Errorf("query: %w", err)
	}
	defer rows.Close()
	resp := &sdk.QueryResponse{}
	for rows.Next() {
		var it sdk.QueryItem
		if err := rows.Scan(&it.Key, &it.Data, &it.ETag); err != nil {
			return nil, fmt.Errorf("query: %w", err)
		}
		resp.Items = append(resp.Items, it)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("query: %w", err)
	}
	if q.Page.Limit > 0 && int64(len(resp.Items)) > q.Page.Limit {
		resp.Items = resp.Items[:q.Page.Limit]
		resp.Token = strconv.FormatInt(offset+q.Page.Limit, 10)
	}
	return resp, nil
}

// filterSQL compiles a parsed filter to a WHERE fragment with parameters.
func filterSQL(f *sdk.Filter) (string, []any, error) {
	if f == nil {
		return "", nil, nil
	}
	switch f.Op {
	case "EQ":
		path, err := jsonPath(f.Key)
		if err != nil {
			return "", nil, err
		}
		if f.Value == nil {
			return "json_type(CAST(value AS TEXT), ?) = 'null'", []any{path}, nil
		}
		v, err := sqlValue(f.Value)
		if err != nil {
			return "", nil, fmt.Errorf("query filter EQ %q: %w", f.Key, err)
		}
		return "json_extract(CAST(value AS TEXT), ?) = ?", []any{path, v}, nil
	case "IN":
		path, err := jsonPath(f.Key)
		if err != nil {
			return "", nil, err
		}
		args := []any{path}
		for _, raw := range f.Values {
			v, err := sqlValue(raw)
			if err != nil {
				return "", nil, fmt.Errorf("query filter IN %q: %w", f.Key, err)
			}
			args = append(args, v)
		}
		return "json_extract(CAST(value AS TEXT), ?) IN (?" + strings.Repeat(", ?", len(f.Values)-1) + ")", args, nil
	case "AND", "OR":
		parts := make([]string, 0, len(f.Children))
		var args []any
		for _, c := range f.Children {
			p, a, err := filterSQL(c)
			if err != nil {
				return "", nil, err
			}
			parts = append(parts, "("+p+")")
			args = append(args, a...)
		}
		return strings.Join(parts, " "+f.Op+" "), args, nil
	}
	return "", nil, fmt.Errorf("query filter: unsupported operator %q", f.Op)
}

// sqlValue converts a decoded JSON scalar to what json_extract returns for it.
func sqlValue(v any) (any, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case bool:
		if x {
			return 1, nil
		}
		return 0, nil
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i, nil
		}
		f, err := x.Float64()
		if err != nil {
			return nil, fmt.Errorf("number %s: %w", x, err)
		}
		return f, nil
	case nil:
		return nil, errors.New("null is only supported in EQ")
	default:
		return nil, fmt.Errorf("%T values are not supported; compare scalars (string, number, boolean)", v)
	}
}

// jsonPath turns a dotted Dapr key ("person.org") into a SQLite JSON path
// with every label quoted, so keys cannot inject path syntax.
func jsonPath(key string) (string, error) {
	if key == "" {
		return "", errors.New("empty key")
	}
	var sb strings.Builder
	sb.WriteString("$")
	for _, label := range strings.Split(key, ".") {
		if label == "" || strings.ContainsAny(label, `"\`) {
			return "", fmt.Errorf("key %q: empty label or quote/backslash not supported", key)
		}
		sb.WriteString(`."` + label + `"`)
	}
	return sb.String(), nil
}
