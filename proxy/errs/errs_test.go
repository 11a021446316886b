package errs

import (
	"encoding/json"
	"errors"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestRowsAreWellFormed(t *testing.T) {
	seen := map[string]Row{}
	for _, r := range All() {
		if !strings.HasPrefix(r.Code, "ERR") {
			t.Errorf("code %q must start with ERR", r.Code)
		}
		if r.HTTP < 400 || r.HTTP > 599 {
			t.Errorf("%s: HTTP status %d out of range", r.Code, r.HTTP)
		}
		if r.GRPC == codes.OK {
			t.Errorf("%s: gRPC code must not be OK", r.Code)
		}
		key := r.Code + "|" + r.Format
		if _, dup := seen[key]; dup {
			t.Errorf("duplicate row %s %q", r.Code, r.Format)
		}
		seen[key] = r
	}
}

// TestTableMatchesCompatReference diffs the HTTP status of each code against the
// compatibility reference's code table, where the reference gives a single status.
func TestTableMatchesCompatReference(t *testing.T) {
	ref, err := os.ReadFile("../../../shared/reference/dapr-v1.14-compat.md")
	if err != nil {
		t.Skipf("compat reference not beside the repo: %v", err)
	}
	want := map[string]int{
		"ERR_STATE_STORE_NOT_CONFIGURED": 500, "ERR_STATE_STORE_NOT_FOUND": 400, "ERR_PUBSUB_FORBIDDEN": 403,
		"ERR_PUBSUB_PUBLISH_MESSAGE": 500, "ERR_INVOKE_OUTPUT_BINDING": 500, "ERR_SECRET_STORE_NOT_FOUND": 401,
		"ERR_HEALTH_NOT_READY": 500, "ERR_OUTBOUND_HEALTH_NOT_READY": 500, "ERR_API_UNIMPLEMENTED": 501,
		"ERR_METADATA_GET": 500, "ERR_PUBSUB_NOT_FOUND": 404, "ERR_ACTOR_INSTANCE_MISSING": 400,
	}
	for code, status := range want {
		if !regexp.MustCompile(regexp.QuoteMeta(code)).Match(ref) {
			t.Errorf("%s is not in the compat reference", code)
		}
		found := false
		for _, r := range All() {
			if r.Code == code {
				found = true
				if r.HTTP != status {
					t.Errorf("%s: HTTP %d, reference says %d", code, r.HTTP, status)
				}
			}
		}
		if !found {
			t.Errorf("%s missing from the table", code)
		}
	}
}

func TestWriteHTTP(t *testing.T) {
	rec := httptest.NewRecorder()
	WriteHTTP(rec, StateStoreNotFound.New("nope"))
	if rec.Code != 400 || rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("status %d, content type %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	var b struct{ ErrorCode, Message string }
	if err := json.Unmarshal(rec.Body.Bytes(), &b); err != nil {
		t.Fatal(err)
	}
	if b.ErrorCode != "ERR_STATE_STORE_NOT_FOUND" || b.Message != "state store nope is not found" {
		t.Fatalf("body %+v", b)
	}

	rec = httptest.NewRecorder()
	WriteHTTP(rec, APIToken.New())
	if rec.Code != 401 || rec.Body.String() != "invalid api token" {
		t.Fatalf("api token answer: %d %q", rec.Code, rec.Body.String())
	}

	rec = httptest.NewRecorder()
	WriteHTTP(rec, errors.New("boom"))
	if rec.Code != 500 || !strings.Contains(rec.Body.String(), `"errorCode":"ERROR"`) {
		t.Fatalf("generic: %d %s", rec.Code, rec.Body.String())
	}
}

func TestGRPC(t *testing.T) {
	err := GRPC(SecretStoreNotFound.New("vault"))
	st, _ := status.FromError(err)
	if st.Code() != codes.InvalidArgument || st.Message() != "failed finding secret store with key vault" {
		t.Fatalf("got %v", st)
	}
	if len(st.Details()) != 1 {
		t.Fatalf("want one ErrorInfo detail, got %v", st.Details())
	}
	// An existing gRPC status passes through unchanged.
	in := status.Error(codes.Aborted, "x")
	if GRPC(in) != in {
		t.Fatal("status errors must pass through")
	}
}
