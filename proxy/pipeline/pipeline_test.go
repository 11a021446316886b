package pipeline

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
)

// TestOrderIsPinned pins the chain order: changing it must be a deliberate edit
// of this test and order.go together.
func TestOrderIsPinned(t *testing.T) {
	want := []string{"recover", "accesslog", "tracing", "metrics", "apitoken", "allowlist", "middleware", "router"}
	var got []string
	for _, e := range Order() {
		got = append(got, e.Name)
		if strings.TrimSpace(e.Reason) == "" {
			t.Errorf("entry %q has no reason", e.Name)
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("order = %v, want %v", got, want)
	}
	if got[len(got)-1] != Terminal {
		t.Fatalf("last entry must be the terminal %q", Terminal)
	}
}

func tag(name string, seen *[]string) Filter {
	return Filter{Name: name, HTTP: func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			*seen = append(*seen, name)
			next.ServeHTTP(w, r)
		})
	}}
}

func TestFiltersRunInOrderWhateverTheyAreGivenIn(t *testing.T) {
	var seen []string
	c, err := New(tag("apitoken", &seen), tag("recover", &seen), tag("accesslog", &seen))
	if err != nil {
		t.Fatal(err)
	}
	h := c.HTTP(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { seen = append(seen, "router") }))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
	if want := []string{"recover", "accesslog", "apitoken", "router"}; !slices.Equal(seen, want) {
		t.Fatalf("ran %v, want %v", seen, want)
	}
	if want := []string{"recover", "accesslog", "apitoken", "router"}; !slices.Equal(c.Names(), want) {
		t.Fatalf("names %v", c.Names())
	}
}

func TestNewRejectsUnknownDuplicateAndTerminal(t *testing.T) {
	var seen []string
	for _, fs := range [][]Filter{
		{tag("nope", &seen)},
		{tag("recover", &seen), tag("recover", &seen)},
		{tag("router", &seen)},
	} {
		if _, err := New(fs...); err == nil {
			t.Errorf("New(%v) succeeded", fs[0].Name)
		}
	}
}
