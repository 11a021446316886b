package resiliency

import (
	"fmt"
	"strconv"
	"strings"

	"google.golang.org/grpc/codes"
)

// codeSet is a parsed list of codes and code ranges such as "429,500-599".
// A nil codeSet is "not configured".
type codeSet []codeRange

type codeRange struct{ lo, hi int }

func (s codeSet) has(code int) bool {
	for _, r := range s {
		if code >= r.lo && code <= r.hi {
			return true
		}
	}
	return false
}

// parseCodes parses a comma-separated list of codes and inclusive ranges,
// each within [min, max]. Blanks around items are ignored; an empty string
// is nil (not configured).
func parseCodes(s string, lowest, highest int) (codeSet, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var set codeSet
	for item := range strings.SplitSeq(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			return nil, fmt.Errorf("%q has an empty item", s)
		}
		loS, hiS, isRange := strings.Cut(item, "-")
		lo, err := strconv.Atoi(strings.TrimSpace(loS))
		if err != nil {
			return nil, fmt.Errorf("%q: %q is not a code or a range such as %d-%d", s, item, lowest, highest)
		}
		hi := lo
		if isRange {
			if hi, err = strconv.Atoi(strings.TrimSpace(hiS)); err != nil {
				return nil, fmt.Errorf("%q: %q is not a code or a range such as %d-%d", s, item, lowest, highest)
			}
		}
		if lo < lowest || hi > highest {
			return nil, fmt.Errorf("%q: %q is outside %d-%d", s, item, lowest, highest)
		}
		if lo > hi {
			return nil, fmt.Errorf("%q: range %q is reversed", s, item)
		}
		set = append(set, codeRange{lo, hi})
	}
	return set, nil
}

// matcher decides whether a failed attempt is retried, given what the
// classifier said about its error.
type matcher struct {
	http codeSet // retry policy matching.httpStatusCodes
	grpc codeSet // retry policy matching.gRPCStatusCodes
	// strict: only errors whose code is listed are retried (the built-in
	// service retries, which retry only Unavailable and Unauthenticated
	// between sidecars); otherwise unlisted protocols fall back to the
	// classifier's transient verdict.
	strict bool
}

func (m matcher) retry(transient bool, httpStatus int, grpcCode codes.Code) bool {
	switch {
	case httpStatus > 0 && m.http != nil:
		return m.http.has(httpStatus)
	case grpcCode != codes.OK && m.grpc != nil:
		return m.grpc.has(int(grpcCode))
	case m.strict:
		return false
	}
	return transient
}
