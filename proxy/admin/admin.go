package admin

import (
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"sort"
	"strings"
	"text/tabwriter"
)

// Page produces one page's value (a slice of structs or maps for tables, any
// JSON-able value otherwise).
type Page func() any

// Handler serves the admin pages.
type Handler struct {
	mux   *http.ServeMux
	pages map[string]Page
	ready func() bool
}

// New returns the admin handler for pages (name → source) and a readiness check.
func New(pages map[string]Page, ready func() bool) *Handler {
	h := &Handler{mux: http.NewServeMux(), pages: pages, ready: ready}
	for name, p := range pages {
		h.mux.HandleFunc("GET /"+name, h.page(p))
	}
	h.mux.HandleFunc("GET /ready", func(w http.ResponseWriter, _ *http.Request) {
		if ready != nil && ready() {
			_, _ = w.Write([]byte("LIVE\n"))
			return
		}
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte("NOT READY\n"))
	})
	h.mux.HandleFunc("GET /{$}", h.index)
	return h
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

func (h *Handler) index(w http.ResponseWriter, _ *http.Request) {
	names := make([]string, 0, len(h.pages)+1)
	for n := range h.pages {
		names = append(names, "/"+n)
	}
	names = append(names, "/ready")
	sort.Strings(names)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintln(w, "Outrigger admin. Pages (JSON; add ?format=text for a table):")
	for _, n := range names {
		fmt.Fprintln(w, " ", n)
	}
}

func wantsText(r *http.Request) bool {
	if f := r.URL.Query().Get("format"); f != "" {
		return f == "text"
	}
	a := r.Header.Get("Accept")
	return a != "" && !strings.Contains(a, "json") && !strings.Contains(a, "*/*")
}

func (h *Handler) page(p Page) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		v := p()
		if rv := reflect.ValueOf(v); rv.Kind() == reflect.Slice && rv.IsNil() {
			v = []any{} // an empty list, not null
		}
		if wantsText(r) {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			WriteText(w, v)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(v)
	}
}

// WriteText renders v for a terminal: a slice as an aligned table (columns are
// the JSON field names), anything else as indented JSON.
func WriteText(w interface{ Write([]byte) (int, error) }, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		fmt.Fprintf(w, "error: %v\n", err)
		return
	}
	rv := reflect.ValueOf(v)
	var rows []map[string]any
	if rv.Kind() == reflect.Slice && json.Unmarshal(b, &rows) == nil {
		if len(rows) == 0 {
			fmt.Fprintln(w, "(none)")
			return
		}
		cols := columns(rv.Type().Elem(), rows)
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, strings.ToUpper(strings.Join(cols, "\t")))
		for _, r := range rows {
			cells := make([]string, len(cols))
			for i, c := range cols {
				cells[i] = cell(r[c])
			}
			fmt.Fprintln(tw, strings.Join(cells, "\t"))
		}
		_ = tw.Flush()
		return
	}
	var pretty any
	_ = json.Unmarshal(b, &pretty)
	out, _ := json.MarshalIndent(pretty, "", "  ")
	fmt.Fprintf(w, "%s\n", out)
}

// columns are the JSON names of the element type's fields in declaration
// order (for structs), then any other keys the rows have, sorted.
func columns(elem reflect.Type, rows []map[string]any) []string {
	var cols []string
	seen := map[string]bool{}
	for elem.Kind() == reflect.Pointer {
		elem = elem.Elem()
	}
	if elem.Kind() == reflect.Struct {
		for i := 0; i < elem.NumField(); i++ {
			f := elem.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "-" || !f.IsExported() {
				continue
			}
			if name == "" {
				name = f.Name
			}
			cols, seen[name] = append(cols, name), true
		}
	}
	var extra []string
	for _, r := range rows {
		for k := range r {
			if !seen[k] {
				extra, seen[k] = append(extra, k), true
			}
		}
	}
	sort.Strings(extra)
	return append(cols, extra...)
}

func cell(v any) string {
	switch x := v.(type) {
	case nil:
		return "-"
	case string:
		if x == "" {
			return "-"
		}
		return x
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = cell(e)
		}
		return strings.Join(parts, ",")
	case float64:
		if x == float64(int64(x)) {
			return fmt.Sprint(int64(x))
		}
		return fmt.Sprintf("%.3g", x)
	}
	b, _ := json.Marshal(v)
	return string(b)
}
