package main

import (
	"encoding/json"
	"testing"
)

// TestCountSpans checks the bench collector's span count against encoding/json on the bodies an
// exporter sends, and that malformed bodies are refused rather than miscounted.
func TestCountSpans(t *testing.T) {
	for _, body := range []string{
		`[]`,
		` [ ] `,
		`[{"traceId":"a","id":"b","name":"calllocal/b/echo"}]`,
		`[{"traceId":"a","tags":{"k":"\"traceId\":x"}},{"traceId":"b","annotations":[{"value":"x"}]}]`,
		"[\n {\"traceId\":\"c\",\"a\":[1,2,{\"b\":\"c\\\\\"}]} ,\n {\"name\":\"q\",\"traceId\":\"d\"}\n]\n",
	} {
		var want []json.RawMessage
		if err := json.Unmarshal([]byte(body), &want); err != nil {
			t.Fatalf("fixture %q: %v", body, err)
		}
		got, err := countSpans([]byte(body))
		if err != nil || got != len(want) {
			t.Errorf("countSpans(%q) = %d, %v; want %d", body, got, err, len(want))
		}
	}
	for _, body := range []string{
		``, `{}`, `[`, `[{}`, `[{}] x`, `[{}}`,
	} {
		if n, err := countSpans([]byte(body)); err == nil {
			t.Errorf("countSpans(%q) = %d, want an error", body, n)
		}
	}
}
