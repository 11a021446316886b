package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/outrigger/outrigger/plugins/sdk"
)

// maxQueryLimit caps a page when the query gives no limit.
const maxQueryLimit = 10000

// Query runs a Dapr state query: the filter (EQ, IN, AND, OR over dotted
// JSON paths such as "person.org") becomes a WHERE clause with jsonb
// comparisons, sort keys become ORDER BY, and the page token is the row
// offset of the next page. Expired rows never match.
func (s *Store) Query(ctx context.Context, q *sdk.Query) (*sdk.QueryResponse, error) {
	sqlText, args, limit, offset, err := buildQuery(s.sql.queryBase, q)
	if err != nil {
		return nil, fmt.Errorf("state.postgresql: query: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.timeout)
	defer cancel()
	rows, err := s.pool.Query(ctx, sqlText, args...)
	if err != nil {
		return nil, fmt.Errorf("state.postgresql: query: %w", err)
	}
	var (
		key string
		r   row
	)
	resp := &sdk.QueryResponse{}
	_, err = pgx.ForEachRow(rows, []any{&key, &r.value, &r.isBinary, &r.etag}, func() error {
		resp.Items = append(resp.Items, sdk.QueryItem{Key: key, Data: r.value, ETag: r.etag.String()})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("state.postgresql: query: %w", err)
	}
	// One row more than the page was asked for: it says another page exists.
	if int64(len(resp.Items)) > limit {
		resp.Items = resp.Items[:limit]
		resp.Token = strconv.FormatInt(offset+limit, 10)
	}
	return resp, nil
}

// buildQuery turns q into SQL after base ("SELECT … FROM t WHERE <live>"),
// with every value and path as a parameter.
func buildQuery(base string, q *sdk.Query) (sqlText string, args []any, limit, offset int64, err error) {
	f, err := sdk.ParseFilter(q.Filter)
	if err != nil {
		return "", nil, 0, 0, err
	}
	b := &queryBuilder{}
	var sb strings.Builder
	sb.WriteString(base)
	if f != nil {
		where, err := b.filter(f)
		if err != nil {
			return "", nil, 0, 0, err
		}
		sb.WriteString(" AND ")
		sb.WriteString(where)
	}
	sb.WriteString(" ORDER BY ")
	for _, so := range q.Sort {
		if so.Key == "" {
			return "", nil, 0, 0, fmt.Errorf("sort: empty key")
		}
		dir := "ASC"
		switch strings.ToUpper(so.Order) {
		case "", "ASC":
		case "DESC":
			dir = "DESC"
		default:
			return "", nil, 0, 0, fmt.Errorf("sort %q: order %q: want ASC or DESC", so.Key, so.Order)
		}
		sb.WriteString(b.path(so.Key) + " " + dir + ", ")
	}
	sb.WriteString("key ASC")

	limit = q.Page.Limit
	if limit <= 0 || limit > maxQueryLimit {
		limit = maxQueryLimit
	}
	if q.Page.Token != "" {
		offset, err = strconv.ParseInt(q.Page.Token, 10, 64)
		if err != nil || offset < 0 {
			return "", nil, 0, 0, fmt.Errorf("page token %q: not a token this store issued", q.Page.Token)
		}
	}
	sb.WriteString(" LIMIT " + b.arg(limit+1) + " OFFSET " + b.arg(offset))
	return sb.String(), b.args, limit, offset, nil
}

// queryBuilder collects positional parameters while rendering a filter.
type queryBuilder struct{ args []any }

func (b *queryBuilder) arg(v any) string {
	b.args = append(b.args, v)
	return "$" + strconv.Itoa(len(b.args))
}

// path is the jsonb value at a dotted key: doc #> '{person,org}'.
func (b *queryBuilder) path(key string) string {
	return "(doc #> " + b.arg(strings.Split(key, ".")) + "::text[])"
}

// jsonArg passes a filter value as jsonb, so that 1036 matches the number
// 1036 and "1036" the string.
func (b *queryBuilder) jsonArg(v any) (string, error) {
	j, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("value %v: %w", v, err)
	}
	return b.arg(string(j)) + "::jsonb", nil
}

func (b *queryBuilder) filter(f *sdk.Filter) (string, error) {
	switch f.Op {
	case "EQ":
		v, err := b.jsonArg(f.Value)
		if err != nil {
			return "", fmt.Errorf("EQ %q: %w", f.Key, err)
		}
		return b.path(f.Key) + " = " + v, nil
	case "IN":
		p := b.path(f.Key)
		vs := make([]string, len(f.Values))
		for i, val := range f.Values {
			v, err := b.jsonArg(val)
			if err != nil {
				return "", fmt.Errorf("IN %q: %w", f.Key, err)
			}
			vs[i] = v
		}
		return p + " IN (" + strings.Join(vs, ", ") + ")", nil
	case "AND", "OR":
		parts := make([]string, len(f.Children))
		for i, c := range f.Children {
			p, err := b.filter(c)
			if err != nil {
				return "", err
			}
			parts[i] = p
		}
		return "(" + strings.Join(parts, " "+f.Op+" ") + ")", nil
	}
	return "", fmt.Errorf("unsupported operator %q", f.Op)
}
