package invoke

import (
	"net/http"
	"strings"

	sidecarv1 "github.com/outrigger/outrigger/proto/gen/outrigger/sidecar/v1"
)

// skipRequestHeader reports headers that never travel to the target app: hop-by-hop
// headers, the sidecar's API token and the length (carried separately).
func skipHeader(k string) bool {
	switch len(k) {
	case 2:
		return strings.EqualFold(k, "TE")
	case 4:
		return strings.EqualFold(k, "Host")
	case 7:
		return strings.EqualFold(k, "Upgrade") || strings.EqualFold(k, "Trailer")
	case 10:
		return strings.EqualFold(k, "Connection") || strings.EqualFold(k, "Keep-Alive")
	case 14:
		return strings.EqualFold(k, "Content-Length") || strings.EqualFold(k, "dapr-api-token")
	case 17:
		return strings.EqualFold(k, "Transfer-Encoding")
	case 16:
		return strings.EqualFold(k, "Proxy-Connection")
	case 19:
		return strings.EqualFold(k, "Proxy-Authorization") || strings.EqualFold(k, "Proxy-Authenticate")
	}
	return false
}

// toWire converts HTTP headers to wire headers, dropping the skipped ones.
func toWire(h http.Header) []*sidecarv1.Header {
	out := make([]*sidecarv1.Header, 0, len(h))
	for k, vs := range h {
		if skipHeader(k) {
			continue
		}
		out = append(out, &sidecarv1.Header{Key: k, Values: vs})
	}
	return out
}

// fromWire converts wire headers back to HTTP headers (keys kept as sent).
func fromWire(hs []*sidecarv1.Header, extra int) http.Header {
	h := make(http.Header, len(hs)+extra)
	for _, x := range hs {
		h[x.Key] = x.Values
	}
	return h
}

// CopyResponseHeaders copies the app's response headers to w, dropping hop-by-hop ones.
func CopyResponseHeaders(dst, src http.Header) {
	for k, vs := range src {
		if skipHeader(k) && !strings.EqualFold(k, "Content-Length") {
			continue
		}
		dst[k] = vs
	}
}
