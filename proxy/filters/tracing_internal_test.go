package filters

import (
	"slices"
	"strings"
	"testing"
)

func TestSplitPathIsSplitNIntoAnArray(t *testing.T) {
	for _, p := range []string{"", "/", "/v1.0", "/v1.0/invoke/app/method/a/b/c/d", "/v1.0-alpha1/publish/bulk/ps/t/x", "//a//", "noslash/x"} {
		var segs [7]string
		got := splitPath(segs[:0], p)
		if want := strings.SplitN(strings.TrimPrefix(p, "/"), "/", 7); !slices.Equal(got, want) {
			t.Errorf("splitPath(%q) = %q, want %q", p, got, want)
		}
	}
}
