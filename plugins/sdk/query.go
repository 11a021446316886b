package sdk

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// Filter is a parsed Dapr state query filter. Op is "EQ", "IN", "AND" or
// "OR". EQ and IN compare the JSON value at the dotted path Key (e.g.
// "person.org") with Value / any of Values; values are decoded JSON with
// numbers as json.Number. AND and OR combine Children.
type Filter struct {
	Op       string
	Key      string
	Value    any
	Values   []any
	Children []*Filter
}

// ParseFilter parses Query.Filter; an empty filter yields (nil, nil),
// meaning "match everything".
func ParseFilter(f map[string]json.RawMessage) (*Filter, error) {
	switch len(f) {
	case 0:
		return nil, nil
	case 1:
	default:
		return nil, fmt.Errorf("query filter: want exactly one top-level operator, got %d", len(f))
	}
	for op, raw := range f {
		return parseFilterOp(op, raw)
	}
	return nil, nil
}

func parseFilterOp(op string, raw json.RawMessage) (*Filter, error) {
	switch op {
	case "EQ", "IN":
		var m map[string]json.RawMessage
		if err := json.Unmarshal(raw, &m); err != nil {
			return nil, fmt.Errorf("query filter %s: want an object {\"key\": value}: %w", op, err)
		}
		if len(m) != 1 {
			return nil, fmt.Errorf("query filter %s: want exactly one key, got %d", op, len(m))
		}
		for k, v := range m {
			if k == "" {
				return nil, fmt.Errorf("query filter %s: empty key", op)
			}
			val, err := decodeJSON(v)
			if err != nil {
				return nil, fmt.Errorf("query filter %s %q: %w", op, k, err)
			}
			if op == "EQ" {
				return &Filter{Op: op, Key: k, Value: val}, nil
			}
			arr, ok := val.([]any)
			if !ok || len(arr) == 0 {
				return nil, fmt.Errorf("query filter IN %q: want a non-empty array", k)
			}
			return &Filter{Op: op, Key: k, Values: arr}, nil
		}
	case "AND", "OR":
		var arr []map[string]json.RawMessage
		if err := json.Unmarshal(raw, &arr); err != nil {
			return nil, fmt.Errorf("query filter %s: want an array of filters: %w", op, err)
		}
		if len(arr) == 0 {
			return nil, fmt.Errorf("query filter %s: empty", op)
		}
		out := &Filter{Op: op}
		for i, sub := range arr {
			child, err := ParseFilter(sub)
			if err != nil {
				return nil, fmt.Errorf("query filter %s[%d]: %w", op, i, err)
			}
			if child == nil {
				return nil, fmt.Errorf("query filter %s[%d]: empty filter", op, i)
			}
			out.Children = append(out.Children, child)
		}
		return out, nil
	}
	return nil, fmt.Errorf("query filter: unsupported operator %q (want EQ, IN, AND or OR)", op)
}

func decodeJSON(raw json.RawMessage) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("decoding value: %w", err)
	}
	return v, nil
}
