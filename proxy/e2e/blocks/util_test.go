package blockse2e

import (
	"slices"
	"strings"
)

func containsAll(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}

func equalStrings(a, b []string) bool { return slices.Equal(a, b) }
